package config

import (
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, map[string]string{"HOME": "/home/u"}, func(t *testing.T, c Config) {
			if c.Command != CmdServe || c.Transport != TransportStdio || c.Listen != "127.0.0.1:0" || c.Provider != "local" ||
				c.MaxBytes != 512<<20 || c.AllowPrivateURLs || c.FetchTimeout != 15*time.Minute || c.LogLevel != slog.LevelInfo {
				t.Errorf("%+v", c)
			}
			if c.DataDir != "/home/u/.local/share/filestage" {
				t.Errorf("data dir %s", c.DataDir)
			}
		}},
		{"XDG data home", nil, map[string]string{"XDG_DATA_HOME": "/x"}, func(t *testing.T, c Config) {
			if c.DataDir != "/x/filestage" {
				t.Errorf("data dir %s", c.DataDir)
			}
		}},
		{"http default listen", []string{"serve", "--transport", "http"}, nil, func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:8080" {
				t.Errorf("listen %s", c.Listen)
			}
		}},
		{"every variable", nil, map[string]string{
			"FILESTAGE_TRANSPORT": "http", "FILESTAGE_LISTEN": "0.0.0.0:9000", "FILESTAGE_PROVIDER": "s3", "FILESTAGE_DATA_DIR": "/d",
			"FILESTAGE_PUBLIC_URL": "https://files.example.com/", "FILESTAGE_MAX_BYTES": "2GiB", "FILESTAGE_ALLOW_PRIVATE_URLS": "1",
			"FILESTAGE_AUTH_TOKEN": "t\n", "FILESTAGE_ALLOWED_ORIGINS": "https://a.example, https://b.example/", "FILESTAGE_FETCH_TIMEOUT": "90s",
			"FILESTAGE_LOG_LEVEL": "debug",
		}, func(t *testing.T, c Config) {
			want := Config{Command: CmdServe, Transport: "http", Listen: "0.0.0.0:9000", Provider: "s3", DataDir: "/d",
				PublicURL: "https://files.example.com", MaxBytes: 2 << 30, AllowPrivateURLs: true, AuthToken: "t",
				AllowedOrigins: []string{"https://a.example", "https://b.example"}, FetchTimeout: 90 * time.Second, LogLevel: slog.LevelDebug}
			if !slices.Equal(c.AllowedOrigins, want.AllowedOrigins) {
				t.Errorf("origins %v", c.AllowedOrigins)
			}
			c.AllowedOrigins, want.AllowedOrigins = nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		}},
		{"flags win over the environment", []string{"--max-bytes", "10MB", "--provider=local", "--allow-private-urls=false"},
			map[string]string{"FILESTAGE_MAX_BYTES": "1GiB", "FILESTAGE_PROVIDER": "s3", "FILESTAGE_ALLOW_PRIVATE_URLS": "true"},
			func(t *testing.T, c Config) {
				if c.MaxBytes != 10e6 || c.Provider != "local" || c.AllowPrivateURLs {
					t.Errorf("%+v", c)
				}
			}},
		{"version", []string{"version"}, nil, func(t *testing.T, c Config) {
			if c.Command != CmdVersion {
				t.Errorf("command %s", c.Command)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"public listener without a token", []string{"--transport", "http", "--listen", "0.0.0.0:8080"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"all interfaces without a token", []string{"--transport", "http", "--listen", ":8080"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"public listener from the environment", nil, map[string]string{"FILESTAGE_TRANSPORT": "http", "FILESTAGE_LISTEN": "192.0.2.1:80"}, "bearer token"},
		{"public URL behind a proxy without a token", []string{"--transport", "http", "--public-url", "https://files.example.com"}, nil, "FILESTAGE_AUTH_TOKEN"},
		{"unknown transport", []string{"--transport", "ws"}, nil, "stdio or http"},
		{"bad size", []string{"--max-bytes", "lots"}, nil, "512MiB"},
		{"zero size", []string{"--max-bytes", "0"}, nil, "positive"},
		{"bad size in the environment", nil, map[string]string{"FILESTAGE_MAX_BYTES": "-1"}, "FILESTAGE_MAX_BYTES"},
		{"bad bool", nil, map[string]string{"FILESTAGE_ALLOW_PRIVATE_URLS": "yes please"}, "FILESTAGE_ALLOW_PRIVATE_URLS"},
		{"bad public URL", []string{"--public-url", "files.example.com"}, nil, "--public-url"},
		{"bad origin", []string{"--allowed-origins", "example.com"}, nil, "--allowed-origins"},
		{"bad listen", []string{"--listen", "8080"}, nil, "--listen"},
		{"bad duration", []string{"--fetch-timeout", "forever"}, nil, "duration"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"stray argument", []string{"serve", "extra"}, nil, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	for _, help := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}} {
		if _, err := Parse(help, env(nil)); !errors.Is(err, ErrHelp) {
			t.Errorf("%v: %v, want ErrHelp", help, err)
		}
	}
	if _, err := Parse([]string{"--transport", "http", "--listen", "0.0.0.0:8080", "--auth-token", "x"}, env(nil)); err != nil {
		t.Errorf("public listener with a token: %v", err)
	}
}

func TestUsageNamesEveryVariable(t *testing.T) {
	u := Usage()
	var c Config
	var s string
	for _, o := range options(&c, &s) {
		if !strings.Contains(u, "--"+o.flag) || !strings.Contains(u, o.env) {
			t.Errorf("usage lacks --%s / %s", o.flag, o.env)
		}
	}
}
