package backend

import "io"

// ReadSized reads r to its end, as io.ReadAll does, into one buffer sized
// for declared (a Content-Length; -1 when unknown) when that is known and
// at most limit — a body is then one allocation instead of io.ReadAll's
// doubling series. A declared length that is wrong only costs growth.
func ReadSized(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared < 0 || declared > limit {
		return io.ReadAll(r)
	}
	// +1: the read that meets EOF finds room without growing.
	buf := make([]byte, 0, declared+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
