// Package testhttp makes the plain HTTP requests tests make as a client
// would: an upload to a presigned URL, a download, a call to a fake.
package testhttp

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Do sends a request with the default client, with header's fields, and
// returns the answer with its whole body read. A request that cannot be
// sent fails the test.
func Do(t testing.TB, method, url string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
