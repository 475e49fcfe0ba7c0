package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
)

// emit logs each write and counts it in a metric at once, and gathers it
// for the pass's Normal Events (see writeEvents). A steady-state pass makes
// no writes and so emits nothing.
func (r *Reconciler) emit(ctx context.Context, s *scope, changes []awsiam.Change) {
	log := ctrl.LoggerFrom(ctx)
	for _, c := range changes {
		log.Info(c.Message, "reason", c.Reason)
		if r.Metrics != nil {
			r.Metrics.writes.WithLabelValues(c.Resource, c.Action).Inc()
		}
		s.writes.add(c)
	}
}

// writeEvents gathers a pass's writes into one Normal Event per reason,
// naming what was written, rather than one Event per write: a pass that
// creates 1000 profiles sends three Events, not 3000, which the event
// broadcaster would partly drop (it queues 1000) and the API server would
// keep for an hour. Profile tasks add to it concurrently.
type writeEvents struct {
	mu       sync.Mutex
	reasons  []string // in the order first written
	byReason map[string]*writeGroup
}

type writeGroup struct {
	action   string
	messages []string
}

func (w *writeEvents) add(c awsiam.Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byReason == nil {
		w.byReason = map[string]*writeGroup{}
	}
	g := w.byReason[c.Reason]
	if g == nil {
		g = &writeGroup{action: c.Action}
		w.byReason[c.Reason] = g
		w.reasons = append(w.reasons, c.Reason)
	}
	g.messages = append(g.messages, c.Message)
}

// notes are the Events' notes by reason, in the order first written: a
// write's own message, or a count and as many messages as fit the 1024
// bytes of a note, up to maxNamedInEvent, and how many more there were.
func (w *writeEvents) notes() []writeNote {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]writeNote, 0, len(w.reasons))
	for _, reason := range w.reasons {
		g := w.byReason[reason]
		out = append(out, writeNote{reason: reason, action: g.action, note: countedNote(g.messages)})
	}
	return out
}

// countedNote is "<n> writes: m1; m2; and <k> more", naming what fits.
func countedNote(messages []string) string {
	if len(messages) == 1 {
		return truncate(messages[0])
	}
	prefix := fmt.Sprintf("%d writes: ", len(messages))
	return truncate(prefix + joinSome(messages, maxMessage-len(prefix)))
}

// joinSome joins up to maxNamedInEvent items with "; " within budget
// bytes, leaving room for "; and <k> more", which it adds when some are
// left out: the one list of an Event's note.
func joinSome(items []string, budget int) string {
	// Room for "; and 9999 more".
	const tail = 16
	var b strings.Builder
	named := 0
	for _, item := range items {
		sep := ""
		if named > 0 {
			sep = "; "
		}
		if named == maxNamedInEvent || b.Len()+len(sep)+len(item)+tail > budget {
			break
		}
		b.WriteString(sep + item)
		named++
	}
	if rest := len(items) - named; rest > 0 {
		if named > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "and %d more", rest)
	}
	return b.String()
}

type writeNote struct{ reason, action, note string }

// sendWriteEvents sends the pass's write Events, whether or not its status
// was written: the writes were made either way.
func (r *Reconciler) sendWriteEvents(s *scope) {
	if r.Recorder == nil {
		return
	}
	for _, n := range s.writes.notes() {
		r.Recorder.Eventf(s.cr, nil, corev1.EventTypeNormal, n.reason, n.action, "%s", n.note)
	}
}

// warnOnNewFailures emits a Warning Event, and logs, when a part turns
// not-ready or its reason or message changes, so a failure that persists
// across resyncs is reported once.
func (r *Reconciler) warnOnNewFailures(s *scope) {
	for _, t := range partConditions {
		now := meta.FindStatusCondition(s.cr.Status.Conditions, t)
		if now == nil || now.Status == "True" || now.Reason == v1alpha1.BlockedReason || now.Reason == v1alpha1.DeletingReason {
			continue
		}
		was := meta.FindStatusCondition(s.before.Status.Conditions, t)
		if was != nil && was.Status == now.Status && was.Reason == now.Reason && was.Message == now.Message {
			continue
		}
		if r.Recorder != nil {
			r.Recorder.Eventf(s.cr, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s: %s", t, now.Message)
		}
	}
}
