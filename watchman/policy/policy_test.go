package policy

import (
	"strings"
	"testing"
	"time"
)

var defs = Defaults{Window: 30 * time.Minute, MinAge: 10 * time.Minute, CPU: 0.05, Net: 4096, Disk: 65536, GPU: 5, Action: ActionPause}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		want    Policy
		wantErr []string // substrings, one per bad label
	}{
		{"no labels", nil, Policy{Defaults: defs}, nil},
		{"opt in only", map[string]string{LabelEnable: "true"}, Policy{Enabled: true, Defaults: defs}, nil},
		{"unrelated labels ignored", map[string]string{"com.example": "x", "heartwood.registrar.x": "1"}, Policy{Defaults: defs}, nil},
		{"every override", map[string]string{
			LabelEnable: "1", LabelWindow: "5s", LabelMinAge: "0s", LabelCPU: "0.5", LabelNet: "100",
			LabelDisk: "0", LabelGPU: "10", LabelAction: "STOP", LabelDryRun: "true", LabelGroup: "train-7",
		}, Policy{Enabled: true, Group: "train-7", Defaults: Defaults{Window: 5 * time.Second, CPU: 0.5, Net: 100, GPU: 10, Action: ActionStop, DryRun: true}}, nil},
		{"enable false", map[string]string{LabelEnable: "false", LabelWindow: "1m"}, Policy{Defaults: func() Defaults { d := defs; d.Window = time.Minute; return d }()}, nil},
		{"bad enable", map[string]string{LabelEnable: "yes"}, Policy{}, []string{"heartwood.watchman.enable=\"yes\": invalid syntax"}},
		{"zero window", map[string]string{LabelEnable: "true", LabelWindow: "0s"}, Policy{}, []string{"window=\"0s\": must be > 0"}},
		{"bad duration", map[string]string{LabelEnable: "true", LabelMinAge: "10"}, Policy{}, []string{"min-age=\"10\": not a duration"}},
		{"negative min-age", map[string]string{LabelEnable: "true", LabelMinAge: "-1s"}, Policy{}, []string{"must be >= 0"}},
		{"negative cpu", map[string]string{LabelEnable: "true", LabelCPU: "-0.1"}, Policy{}, []string{"cpu=\"-0.1\": must be between"}},
		{"nan net", map[string]string{LabelEnable: "true", LabelNet: "NaN"}, Policy{}, []string{"net=\"NaN\": not a number"}},
		{"gpu over 100", map[string]string{LabelEnable: "true", LabelGPU: "101"}, Policy{}, []string{"gpu=\"101\""}},
		{"bad action", map[string]string{LabelEnable: "true", LabelAction: "kill"}, Policy{}, []string{"unknown action \"kill\""}},
		{"empty group", map[string]string{LabelEnable: "true", LabelGroup: " "}, Policy{}, []string{"empty group"}},
		{"typo", map[string]string{LabelEnable: "true", "heartwood.watchman.windw": "5m"}, Policy{}, []string{"windw=\"5m\": unknown label"}},
		{"several errors", map[string]string{LabelEnable: "true", LabelCPU: "x", LabelDisk: "y"}, Policy{}, []string{"cpu=\"x\"", "disk=\"y\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.labels, defs)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if got.Enabled {
					t.Error("a malformed policy is enabled")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// clock is a fake clock for the decision tests.
type clock struct{ t time.Time }

func (c *clock) step(d time.Duration) (start, end time.Time) {
	start = c.t
	c.t = c.t.Add(d)
	return start, c.t
}

func TestTrackerHysteresis(t *testing.T) {
	p := Policy{Enabled: true, Defaults: Defaults{Window: 5 * time.Second, MinAge: 0, CPU: 0.05, Net: 1000, Disk: 1000, GPU: 5}}
	idle := Signals{CPU: 0.01}
	busy := Signals{CPU: 0.9}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		s       Signals
		d       time.Duration
		due     bool
		idleFor time.Duration
	}
	for _, tc := range []struct {
		name    string
		started time.Time
		minAge  time.Duration
		steps   []step
	}{
		{"due after the whole window", t0, 0, []step{
			{busy, time.Second, false, 0}, {idle, time.Second, false, time.Second}, {idle, time.Second, false, 2 * time.Second},
			{idle, time.Second, false, 3 * time.Second}, {idle, time.Second, false, 4 * time.Second}, {idle, time.Second, true, 5 * time.Second},
		}},
		{"one busy sample restarts the window", t0, 0, []step{
			{idle, time.Second, false, time.Second}, {idle, time.Second, false, 2 * time.Second}, {idle, time.Second, false, 3 * time.Second},
			{idle, time.Second, false, 4 * time.Second}, {busy, time.Second, false, 0}, {idle, time.Second, false, time.Second},
			{idle, 3 * time.Second, false, 4 * time.Second}, {idle, time.Second, true, 5 * time.Second},
		}},
		{"min age holds it", t0, time.Minute, []step{
			{idle, 10 * time.Second, false, 10 * time.Second}, {idle, 49 * time.Second, false, 59 * time.Second}, {idle, time.Second, true, time.Minute},
		}},
		{"throttled is not idle", t0, 0, []step{
			{Signals{Throttled: true}, 6 * time.Second, false, 0},
		}},
		{"pressure is not idle", t0, 0, []step{
			{Signals{HasPressure: true, Pressure: 0.5}, 6 * time.Second, false, 0},
			{Signals{HasPressure: true, Pressure: 0.05}, 6 * time.Second, true, 6 * time.Second},
		}},
		{"network above threshold", t0, 0, []step{{Signals{Net: 1001}, 6 * time.Second, false, 0}}},
		{"disk above threshold", t0, 0, []step{{Signals{Disk: 5000}, 6 * time.Second, false, 0}}},
		{"at the threshold is idle", t0, 0, []step{{Signals{CPU: 0.05, Net: 1000, Disk: 1000}, 6 * time.Second, true, 6 * time.Second}}},
		{"gpu counts only when known", t0, 0, []step{
			{Signals{GPU: 50}, 6 * time.Second, true, 6 * time.Second},
			{Signals{GPU: 50, HasGPU: true}, time.Second, false, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			pol.MinAge = tc.minAge
			c := &clock{t: t0}
			var tr Tracker
			for i, st := range tc.steps {
				start, end := c.step(st.d)
				v := tr.Observe(pol, 0.1, tc.started, start, end, st.s)
				if v.Due != st.due || v.IdleFor != st.idleFor {
					t.Fatalf("step %d: got due=%v idle=%s (%s), want due=%v idle=%s", i, v.Due, v.IdleFor, v.Blocker, st.due, st.idleFor)
				}
				if !v.Idle && v.Blocker == "" {
					t.Fatalf("step %d: active without a blocker", i)
				}
			}
		})
	}
}

func TestTrackerGapRestarts(t *testing.T) {
	p := Policy{Enabled: true, Defaults: Defaults{Window: 5 * time.Second, CPU: 1}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tr Tracker
	tr.Observe(p, 1, t0, t0, t0.Add(4*time.Second), Signals{})
	// A skipped sample leaves a gap: the streak starts again.
	v := tr.Observe(p, 1, t0, t0.Add(6*time.Second), t0.Add(7*time.Second), Signals{})
	if v.Due || v.IdleFor != time.Second {
		t.Errorf("after a gap: %+v", v)
	}
	if v.Until != 4*time.Second {
		t.Errorf("until %s", v.Until)
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(3)
	for i, c := range []struct {
		at   time.Duration
		n    int
		want bool
	}{
		{0, 2, true}, {10 * time.Second, 2, false}, {20 * time.Second, 1, true}, {30 * time.Second, 1, false},
		{60 * time.Second, 2, true}, {61 * time.Second, 1, false}, {81 * time.Second, 1, true},
	} {
		if got := l.Allow(t0.Add(c.at), c.n); got != c.want {
			t.Errorf("case %d: Allow(+%s, %d) = %v", i, c.at, c.n, got)
		}
	}
	if NewLimiter(0).Allow(t0, 1) {
		t.Error("a zero cap allowed an action")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("heartwood.watchman.enable", "true", "heartwood.watchman.window", "5m")
	f.Add("heartwood.watchman.cpu", "0.1", "heartwood.watchman.action", "notify")
	f.Add("heartwood.watchman.group", "g", "heartwood.watchman.gpu", "1e400")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		p, err := Parse(map[string]string{k1: v1, k2: v2}, defs)
		if err != nil {
			if p.Enabled {
				t.Fatal("malformed policy enabled")
			}
			return
		}
		if p.Window <= 0 || p.MinAge < 0 || p.CPU < 0 || p.Net < 0 || p.Disk < 0 || p.GPU < 0 || p.GPU > 100 {
			t.Fatalf("invalid policy accepted: %+v", p)
		}
		if _, err := ParseAction(string(p.Action)); err != nil {
			t.Fatalf("invalid action accepted: %q", p.Action)
		}
	})
}
