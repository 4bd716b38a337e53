package providers

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	boom := errors.New("COMPOSIO_API_KEY is not set")
	r.Register("b", func(context.Context, Settings) (Provider, error) { return nil, boom })
	r.Register("a", func(context.Context, Settings) (Provider, error) { return nil, nil })
	if got := strings.Join(r.Names(), ","); got != "a,b" {
		t.Errorf("names %s", got)
	}
	if _, err := r.Open(context.Background(), "a", Settings{}); err != nil {
		t.Errorf("open a: %v", err)
	}
	if _, err := r.Open(context.Background(), "b", Settings{}); !errors.Is(err, boom) || !strings.Contains(err.Error(), "provider b") {
		t.Errorf("open b: %v", err)
	}
	if _, err := r.Open(context.Background(), "nope", Settings{}); err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("open unknown: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate registration did not panic")
		}
	}()
	r.Register("a", nil)
}
