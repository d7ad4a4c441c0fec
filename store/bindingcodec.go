package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/parleyhq/parley/presence"
)

// The binding log stores each binding as two blobs: its key (account sid,
// identity, binding key) and the rest of it. Four bound values a row instead
// of seventeen: binding each value is a cgo call and a copy, and that was
// most of a flush. Fields are written in a fixed order, strings as uvarint
// length and bytes, integers as varints, q as its IEEE 754 bits.

const bindingDataVersion = 1

var errBindingCodec = errors.New("binding log: bad encoding")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeBindingKey appends the key of a binding.
func encodeBindingKey(b []byte, k presence.BindingKey) []byte {
	b = appendString(b, k.AccountSid)
	b = appendString(b, k.Identity)
	return appendString(b, k.Key)
}

// encodeBindingData appends everything of b but its key and expiry.
func encodeBindingData(out []byte, b presence.Binding) []byte {
	out = append(out, bindingDataVersion)
	for _, s := range []string{b.Contact, b.InstanceID, b.CallID, b.Transport, b.Source, b.Local, b.FlowID, b.UserAgent} {
		out = appendString(out, s)
	}
	out = binary.AppendVarint(out, int64(b.RegID))
	out = binary.AppendUvarint(out, uint64(b.CSeq))
	out = binary.AppendUvarint(out, math.Float64bits(b.Q))
	return binary.AppendVarint(out, ms(b.Updated))
}

type codecReader struct {
	b   []byte
	err error
}

func (r *codecReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBindingCodec
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *codecReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBindingCodec
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *codecReader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errBindingCodec
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeBinding rebuilds a binding from its two blobs and its expiry.
func decodeBinding(key, data []byte, expires int64) (presence.Binding, error) {
	k := codecReader{b: key}
	b := presence.Binding{AccountSid: k.string(), Identity: k.string(), Key: k.string(), Expires: fromMS(expires)}
	if k.err != nil || len(k.b) != 0 {
		return presence.Binding{}, fmt.Errorf("%w (key)", errBindingCodec)
	}
	if len(data) == 0 || data[0] != bindingDataVersion {
		return presence.Binding{}, fmt.Errorf("%w (data version)", errBindingCodec)
	}
	d := codecReader{b: data[1:]}
	for _, s := range []*string{&b.Contact, &b.InstanceID, &b.CallID, &b.Transport, &b.Source, &b.Local, &b.FlowID, &b.UserAgent} {
		*s = d.string()
	}
	regID, cseq, q, updated := d.varint(), d.uvarint(), d.uvarint(), d.varint()
	if d.err != nil || len(d.b) != 0 || regID < math.MinInt32 || regID > math.MaxInt32 || cseq > math.MaxUint32 {
		return presence.Binding{}, fmt.Errorf("%w (data)", errBindingCodec)
	}
	b.RegID, b.CSeq, b.Q, b.Updated = int(regID), uint32(cseq), math.Float64frombits(q), fromMS(updated)
	return b, nil
}
