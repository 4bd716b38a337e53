package testfile

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
)

// PutAtOnce sends one PUT per body to url with headers, all released at
// the same moment, and returns their statuses in order (0 for a PUT that
// got no answer, which is reported as a test error): a race for one key.
func PutAtOnce(t *testing.T, method, url string, headers map[string]string, bodies [][]byte) []int {
	t.Helper()
	status := make([]int, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(method, url, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	return status
}
