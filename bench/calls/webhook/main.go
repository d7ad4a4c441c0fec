// Command webhook answers every request with the same TwiML, for call
// benchmarks: a webhook on loopback whose cost is negligible.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	twiml := flag.String("twiml", `<Response><Dial answerOnBridge="true"><Client>alice</Client></Dial></Response>`, "document to serve")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stdout, "listening", ln.Addr()) // the script waits for this line
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, *twiml)
	})))
}
