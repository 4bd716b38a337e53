// Package faultproxy is a TCP proxy for tests that breaks connections the
// way networks and servers do: slowly, cut short, reset, or answered by a
// liar that never forwards the request.
package faultproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Fault says what the proxy does to each connection's answer (the bytes
// from upstream to the client).
type Fault struct {
	// After is how many answer bytes pass before the fault strikes.
	After int64
	// Kind is what happens then.
	Kind Kind
	// Delay paces Slow: one byte per Delay.
	Delay time.Duration
	// Answer is what Lie sends instead of forwarding anything.
	Answer string
}

// Kind is a fault.
type Kind int

const (
	// None forwards everything.
	None Kind = iota
	// Slow sends the rest one byte per Delay (a slow-loris peer).
	Slow
	// Reset closes both sides with a TCP RST.
	Reset
	// Cut closes both sides cleanly: the answer ends early.
	Cut
	// Lie reads one HTTP request, answers Answer and closes, forwarding
	// nothing upstream.
	Lie
)

// Proxy forwards connections from its listener to an upstream address.
type Proxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	fault    Fault
	conns    int
	open     map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// Start proxies to upstream (host:port) until the test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, upstream: upstream, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		// Idle keep-alive connections would otherwise hold on.
		p.mu.Lock()
		for c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set makes f the fault of connections accepted from now on.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// Drop resets every open connection now, as a network that goes away
// mid-transfer does; later connections pass as Set says.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// Conns is how many connections the proxy accepted.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns++
		f := p.fault
		p.mu.Unlock()
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.serve(c.(*net.TCPConn), f) }()
	}
}

// track records c as open until the returned func is called.
func (p *Proxy) track(c net.Conn) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open[c] = struct{}{}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.open, c)
		c.Close()
	}
}

func (p *Proxy) serve(c *net.TCPConn, f Fault) {
	defer p.track(c)()
	if f.Kind == Lie {
		// Read the whole request, body included, then answer: the client
		// must hear the lie, not a reset of a request it is still sending.
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, f.Answer)
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer p.track(up)()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
	}()
	if f.Kind == None {
		io.Copy(c, up)
		return
	}
	io.CopyN(c, up, f.After)
	switch f.Kind {
	case Slow:
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(up, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
			time.Sleep(f.Delay)
		}
	case Reset:
		c.SetLinger(0)
	}
}
