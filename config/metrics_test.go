package config

import (
	"strings"
	"testing"
)

func TestMetricsListen(t *testing.T) {
	c, err := Parse([]string{"serve", "--transport", "http", "--metrics-listen", "127.0.0.1:9090"}, env(nil))
	if err != nil || c.MetricsListen != "127.0.0.1:9090" {
		t.Errorf("flag: %q, %v", c.MetricsListen, err)
	}
	if c, err := Parse([]string{"serve", "--transport", "http", "--metrics-listen", "[::1]:9090", "--pprof"}, env(nil)); err != nil || !c.Pprof {
		t.Errorf("--pprof on loopback: %v, %v", c.Pprof, err)
	}
	c, err = Parse(nil, env(map[string]string{"FILESTAGE_METRICS_LISTEN": "0.0.0.0:9090"}))
	if err != nil || c.MetricsListen != "0.0.0.0:9090" {
		t.Errorf("environment: %q, %v", c.MetricsListen, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-listen", "9090"}, "want host:port"},
		{[]string{"--metrics-listen", "localhost:"}, "want host:port"},
		{[]string{"--transport", "http", "--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.1:8080"}, "a port of their own"},
		{[]string{"--transport", "http", "--pprof"}, "loopback --metrics-listen only"},
		{[]string{"--transport", "http", "--pprof", "--metrics-listen", "0.0.0.0:9090"}, "loopback --metrics-listen only"},
		{[]string{"--transport", "http", "--pprof", "--metrics-listen", "10.0.0.1:9090"}, "loopback --metrics-listen only"},
	} {
		if _, err := Parse(tt.args, env(nil)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}
