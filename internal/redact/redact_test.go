package redact

import "testing"

func TestURL(t *testing.T) {
	tests := map[string]string{
		"https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=x": "https://s3.example/b/k",
		"https://user:pass@host.example/p#frag":                         "https://host.example/p",
		"http://host/p?":                                                "http://host/p",
		"://bad\x7f?sig=1":                                              "://bad\x7f",
	}
	for in, want := range tests {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
