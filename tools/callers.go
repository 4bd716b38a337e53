package tools

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/filestage/filestage/auth"
)

// Callers is each principal's share of the server, on top of the
// server-wide limits: its own stage slots and its own call rate, so that
// one client cannot take every slot or every moment from the rest.
type Callers struct {
	// defaults apply where a principal sets no limit of its own.
	defaults auth.Limits

	mu sync.Mutex
	m  map[string]*caller
}

type caller struct {
	limits auth.Limits
	stages Slots
	rate   *rate.Limiter
	used   time.Time
	active int
}

// Idle callers are forgotten once there are this many; one idle this long
// has a full rate allowance again anyway.
const (
	callersKept = 10000
	callerIdle  = 10 * time.Minute
)

// NewCallers returns per-principal limits with defaults for principals that
// set none; zero means no limit of that kind.
func NewCallers(defaults auth.Limits) *Callers {
	return &Callers{defaults: defaults, m: map[string]*caller{}}
}

// enter admits one call of p's: it counts against p's call rate and, for a
// stage call, takes one of p's stage slots, waiting up to BusyWait. leave
// must be called when the call ends.
func (c *Callers) enter(ctx context.Context, p *auth.Principal, stage bool) (leave func(), err error) {
	if c == nil {
		return func() {}, nil
	}
	cl := c.get(p)
	done := func() {
		c.mu.Lock()
		cl.active--
		cl.used = time.Now()
		c.mu.Unlock()
	}
	if cl.rate != nil {
		if r := cl.rate.Reserve(); r.Delay() > 0 {
			r.Cancel()
			done()
			wait := int(math.Ceil(r.Delay().Seconds()))
			return nil, &Error{Status: 429, Slug: "RATE_LIMITED",
				Message: fmt.Sprintf("this client has made its %d tool calls of the last minute; nothing was started or stored", cl.limits.CallsPerMinute),
				Fix:     fmt.Sprintf("Wait %d s, then call again; spread calls out, or ask the operator for a higher calls-per-minute.", max(1, wait))}
		}
	}
	if !stage || cl.stages == nil {
		return done, nil
	}
	release, err := cl.stages.acquire(ctx, "this client already runs %d stage calls, its limit")
	if err != nil {
		done()
		return nil, err
	}
	return func() { release(); done() }, nil
}

// limits are p's own, or the defaults where p has none.
func (c *Callers) limits(p *auth.Principal) auth.Limits {
	limits := p.Limits
	if limits.Stages == 0 {
		limits.Stages = c.defaults.Stages
	}
	if limits.CallsPerMinute == 0 {
		limits.CallsPerMinute = c.defaults.CallsPerMinute
	}
	return limits
}

// stageLimit is how many stage calls p may run at once; 0: no limit.
func (c *Callers) stageLimit(p *auth.Principal) int {
	if c == nil {
		return 0
	}
	return c.limits(p).Stages
}

// get returns p's state, marked active; new limits for p start afresh.
func (c *Callers) get(p *auth.Principal) *caller {
	limits := c.limits(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.m[p.ID]
	if !ok || cl.limits != limits {
		if len(c.m) >= callersKept {
			c.forgetIdle()
		}
		cl = &caller{limits: limits}
		if limits.Stages > 0 {
			cl.stages = NewSlots(limits.Stages)
		}
		if n := limits.CallsPerMinute; n > 0 {
			cl.rate = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
		}
		c.m[p.ID] = cl
	}
	cl.active++
	return cl
}

// forgetIdle drops callers with no call running that were idle a while;
// c.mu is held.
func (c *Callers) forgetIdle() {
	cutoff := time.Now().Add(-callerIdle)
	for id, cl := range c.m {
		if cl.active == 0 && cl.used.Before(cutoff) {
			delete(c.m, id)
		}
	}
}
