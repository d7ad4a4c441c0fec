package store

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

func TestBindingCodecRoundTrip(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	tests := []presence.Binding{
		{AccountSid: "AC1", Identity: "sip:alice@example.com", Key: "sip:alice@127.0.0.1:5070", Contact: "sip:alice@127.0.0.1:5070",
			CallID: "c1", CSeq: 7, Q: 0.5, Expires: now.Add(time.Hour), Transport: "tcp", Source: "127.0.0.1:5070", Local: "127.0.0.1:5060",
			FlowID: "tcp/127.0.0.1:5070", UserAgent: "ua", Updated: now},
		{AccountSid: "AC1", Identity: "client:bob", Key: "<urn:uuid:1>;reg-id=1", InstanceID: "<urn:uuid:1>", RegID: 1, CSeq: 1<<32 - 1,
			Q: 1, Expires: now, Updated: now},
		{}, // every field empty or zero
		{AccountSid: "AC\x00", Identity: "\xff\xfe", Key: string(make([]byte, 300)), RegID: -5},
	}
	for _, b := range tests {
		got, err := decodeBinding(encodeBindingKey(nil, b.BindingKey()), encodeBindingData(nil, b), ms(b.Expires))
		if err != nil {
			t.Fatalf("decode %+v: %v", b, err)
		}
		if !got.Expires.Equal(b.Expires) || !got.Updated.Equal(b.Updated) {
			t.Fatalf("times: got %+v want %+v", got, b)
		}
		got.Expires, got.Updated = b.Expires, b.Updated
		if got != b {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
		}
	}
}

// FuzzDecodeBinding: any stored bytes give a binding or an error, never a
// panic; what decodes re-encodes to bytes that decode the same.
func FuzzDecodeBinding(f *testing.F) {
	b := presence.Binding{AccountSid: "AC1", Identity: "sip:alice@example.com", Key: "k", Contact: "sip:alice@h", CSeq: 3, Q: 0.5}
	f.Add(encodeBindingKey(nil, b.BindingKey()), encodeBindingData(nil, b))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff}, []byte{1, 0xff})
	f.Fuzz(func(t *testing.T, key, data []byte) {
		got, err := decodeBinding(key, data, 0)
		if err != nil {
			return
		}
		// Varints have one shortest form (what the encoder writes); longer
		// ones decode to the same values, so compare what decodes.
		again, err := decodeBinding(encodeBindingKey(nil, got.BindingKey()), encodeBindingData(nil, got), 0)
		if err != nil {
			t.Fatalf("re-encoded binding does not decode: %v", err)
		}
		if again != got {
			t.Fatalf("re-encoded binding differs:\n got %+v\nwant %+v", again, got)
		}
	})
}
