package awsiamtest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Chaos makes IAM unreliable the ways real IAM is, at the HTTP layer in
// front of kumo, for processes that cannot be handed a Recorder: the
// operator as its own process. With a rate r, each IAM call fails with
// probability r, in one of four ways chosen at random: a 503, a Throttling
// error, a connection dropped before the call reaches IAM, or an answer
// delayed by Slow. Independently, with LoseCreates, the first call of each
// Create* action reaches IAM and its answer is dropped: the resource exists
// and the client does not know it.
//
// It is controlled over HTTP on the same listener, so a test can turn it on
// and off while the operator runs:
//
//	POST /_chaos?rate=0.2&seed=7&lose-creates=true&slow=2s
//	GET  /_chaos   the counts of what it did, as KEY=value lines
type Chaos struct {
	next http.Handler

	mu          sync.Mutex
	rate        float64
	slow        time.Duration
	loseCreates bool
	lost        map[string]bool // Create* actions whose answer was dropped
	rng         *rand.Rand
	counts      map[string]int
	calls       []actionForm // every call that reached the proxy
}

type actionForm struct{ action, form, userAgent string }

// NewChaos wraps next; it injects nothing until told to.
func NewChaos(next http.Handler) *Chaos {
	return &Chaos{next: next, lost: map[string]bool{}, counts: map[string]int{}, rng: rand.New(rand.NewPCG(1, 1))}
}

// ChaosPath is where Chaos is controlled.
const ChaosPath = "/_chaos"

// The kinds of fault, as counted.
const (
	Fault503       = "503"
	FaultThrottle  = "throttling"
	FaultDrop      = "dropped"
	FaultSlow      = "slow"
	FaultLostReply = "lost-create-response"
)

// Configure sets the rate (0 turns random faults off), the seed of the
// choices, the delay of slow answers and whether to lose the first answer
// of each Create* action.
func (c *Chaos) Configure(rate float64, seed uint64, slow time.Duration, loseCreates bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rate, c.slow, c.loseCreates = rate, slow, loseCreates
	c.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// A new configuration starts over: each Create* loses an answer again,
	// and the counts are of this configuration's faults only.
	c.lost, c.counts = map[string]bool{}, map[string]int{}
}

// Calls returns, by action, the calls that reached the proxy since the last
// ResetCalls, faulted or not: what a process outside the test made.
func (c *Chaos) Calls() map[string]int {
	return c.callsWhere(func(actionForm) bool { return true })
}

// ResetCalls forgets the counted calls.
func (c *Chaos) ResetCalls() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}

// CallsMentioning returns, by action, the calls since the last ResetCalls
// whose form has s in a parameter's value, such as a role's name.
func (c *Chaos) CallsMentioning(s string) map[string]int {
	return c.callsWhere(func(f actionForm) bool { return strings.Contains(f.form, s) })
}

// CallsOfApp returns, by action, the calls since the last ResetCalls whose
// user agent names the SDK application ID appID.
func (c *Chaos) CallsOfApp(appID string) map[string]int {
	return c.callsWhere(func(f actionForm) bool { return strings.Contains(f.userAgent, "app/"+appID) })
}

func (c *Chaos) callsWhere(keep func(actionForm) bool) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, f := range c.calls {
		if keep(f) {
			out[f.action]++
		}
	}
	return out
}

// Counts returns how many faults of each kind were injected.
func (c *Chaos) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

func (c *Chaos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ChaosPath {
		c.control(w, r)
		return
	}
	form, body, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r = withBody(r, body)
	action := form.Get("Action")
	if action == "" {
		action = restAction(r)
	}
	c.mu.Lock()
	c.calls = append(c.calls, actionForm{action: action, form: strings.Join(slices.Concat(slices.Collect(maps.Values(form))...), "\n"), userAgent: r.UserAgent()})
	c.mu.Unlock()
	fault, delay := c.choose(action, r)
	switch fault {
	case Fault503:
		writeQueryError(w, http.StatusServiceUnavailable, iamNamespace, "ServiceUnavailable", "injected: the service is unavailable")
	case FaultThrottle:
		writeQueryError(w, http.StatusBadRequest, iamNamespace, "Throttling", "injected: Rate exceeded")
	case FaultDrop:
		dropConnection(w)
	case FaultLostReply:
		// IAM does the work; the answer never arrives.
		c.next.ServeHTTP(httptest.NewRecorder(), r)
		dropConnection(w)
	case FaultSlow:
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		c.next.ServeHTTP(w, r)
	default:
		c.next.ServeHTTP(w, r)
	}
}

// choose decides the fault for one call; only IAM calls (by the service of
// their signature) are touched, so discovery through STS and EKS stays
// reliable.
func (c *Chaos) choose(action string, r *http.Request) (string, time.Duration) {
	if !isIAM(r) {
		return "", 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loseCreates && strings.HasPrefix(action, "Create") && !c.lost[action] {
		c.lost[action] = true
		c.counts[FaultLostReply]++
		return FaultLostReply, 0
	}
	if c.rate <= 0 || c.rng.Float64() >= c.rate {
		return "", 0
	}
	fault := []string{Fault503, FaultThrottle, FaultDrop, FaultSlow}[c.rng.IntN(4)]
	c.counts[fault]++
	return fault, c.slow
}

func isIAM(r *http.Request) bool {
	m := scopeService.FindStringSubmatch(r.Header.Get("Authorization"))
	return m != nil && m[1] == "iam"
}

func (c *Chaos) control(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		q := r.URL.Query()
		rate, err := strconv.ParseFloat(q.Get("rate"), 64)
		if err != nil || rate < 0 || rate > 1 {
			http.Error(w, "rate must be a number from 0 to 1", http.StatusBadRequest)
			return
		}
		seed, _ := strconv.ParseUint(q.Get("seed"), 10, 64)
		slow, _ := time.ParseDuration(q.Get("slow"))
		c.Configure(rate, seed, slow, q.Get("lose-creates") == "true")
	}
	for k, v := range c.Counts() {
		fmt.Fprintf(w, "%s=%d\n", k, v)
	}
}

// iamNamespace is the XML namespace of IAM's answers.
const iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
