package backend

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadSized(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 170) // 1.7 KB
	broken := errors.New("connection reset")
	tests := []struct {
		name            string
		r               io.Reader
		declared, limit int64
		want            []byte
		err             error
	}{
		{"declared exactly", bytes.NewReader(body), 1700, 1 << 20, body, nil},
		{"unknown length", bytes.NewReader(body), -1, 1 << 20, body, nil},
		{"declared too short", bytes.NewReader(body), 10, 1 << 20, body, nil},
		{"declared too long", bytes.NewReader(body), 5000, 1 << 20, body, nil},
		{"declared over the limit", bytes.NewReader(body), 1 << 30, 1 << 20, body, nil},
		{"one byte per read", iotest.OneByteReader(bytes.NewReader(body)), 1700, 1 << 20, body, nil},
		{"empty", bytes.NewReader(nil), 0, 1 << 20, []byte{}, nil},
		{"error midway", io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(broken)), 1700, 1 << 20, body[:100], broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSized(tt.r, tt.declared, tt.limit)
			if !errors.Is(err, tt.err) || !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes, %v; want %d bytes, %v", len(got), err, len(tt.want), tt.err)
			}
		})
	}
}
