// Package testfile makes file contents for tests.
package testfile

import "crypto/rand"

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// PNG returns a PNG signature and header chunk followed by n random bytes:
// content sniffing sees image/png, and every call gives different bytes.
func PNG(n int) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"), Random(n)...)
}
