package sip

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// flowID names a connection: transport and the peer's address, exactly as
// sipgo keys its connection pools ("tcp/127.0.0.1:40312").
func flowID(transport, remote string) string { return transport + "/" + remote }

// flowListener accepts connections for one reliable transport, finishes the
// TLS handshake and reads the WebSocket upgrade request off the accept path
// (so a silent client cannot stall sipgo's accept loop), and reports every
// connection's close to the server so its bindings go offline.
type flowListener struct {
	net.Listener
	transport string
	tlsConf   *tls.Config // tls, wss
	ws        bool        // ws, wss: buffer the HTTP upgrade request
	timeout   time.Duration
	opened    func(id string)
	closed    func(id string)

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error
}

func newFlowListener(l net.Listener, transport string, tlsConf *tls.Config, timeout time.Duration, opened, closed func(string)) *flowListener {
	f := &flowListener{Listener: l, transport: transport, tlsConf: tlsConf, ws: transport == "ws" || transport == "wss",
		timeout: timeout, opened: opened, closed: closed, conns: make(chan net.Conn), done: make(chan struct{})}
	go f.acceptLoop()
	return f
}

func (f *flowListener) acceptLoop() {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			f.errMu.Lock()
			f.err = err
			f.errMu.Unlock()
			f.Close()
			return
		}
		go f.prepare(c)
	}
}

func (f *flowListener) prepare(raw net.Conn) {
	c := raw
	deadline := time.Now().Add(f.timeout)
	_ = raw.SetDeadline(deadline)
	if f.tlsConf != nil {
		tc := tls.Server(raw, f.tlsConf)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			raw.Close()
			return
		}
		c = tc
	}
	if f.ws {
		head, err := readHTTPHead(c, 16<<10)
		if err != nil {
			c.Close()
			return
		}
		c = &prefixConn{Conn: c, prefix: head}
	}
	_ = raw.SetDeadline(time.Time{})
	id := flowID(f.transport, raw.RemoteAddr().String())
	tc := &trackedConn{Conn: c, onClose: func() { f.closed(id) }}
	f.opened(id)
	select {
	case f.conns <- tc:
	case <-f.done:
		tc.Close()
	}
}

func (f *flowListener) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		f.errMu.Lock()
		defer f.errMu.Unlock()
		if f.err != nil {
			return nil, f.err
		}
		return nil, net.ErrClosed
	}
}

func (f *flowListener) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.done)
		err = f.Listener.Close()
	})
	return err
}

// readHTTPHead reads up to and including the blank line that ends an HTTP
// request head.
func readHTTPHead(c net.Conn, limit int) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 2048)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if bytes.Contains(buf, []byte("\r\n\r\n")) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) > limit {
			return nil, errors.New("http request head too large")
		}
	}
}

// prefixConn replays bytes read ahead before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// trackedConn calls onClose once when closed, by either side.
type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}
