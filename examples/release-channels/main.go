// Release channels: stable and beta, with features promoted on a schedule.
//
//	go run ./examples/release-channels
//
// One flag, "channel", says which release train a user is on. Users who
// opt into beta (your HTTP middleware sets the betaOptIn attribute of the
// evaluation context from a cookie or a profile setting) ride the newest
// train, 2026-12, at once.
// Everyone else stays on 2026-11 until the promotion: a schedule moves
// stable users to 2026-12 in steps (10 %, 50 %, 100 %, each over an hour on
// the morning of its day: weights move linearly between two steps, so a
// step is held by repeating it). The train's features
// are roll-up flags with a prerequisite on the channel: they are on exactly
// for the users on 2026-12, so promoting the train promotes all of them,
// and a kill switch on one feature leaves the others alone.
//
// The program evaluates the flags for 1,000 stable users and 100 beta users
// at four instants around the promotion (WithClock) and prints who sees
// the new features.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/flagstream/flags"
)

// document is the channel flag, two roll-up features and a kill-switched
// third one.
const document = `{"flags": {
  "channel": {
    "description": "the release train a user rides: beta opt-ins ride the newest at once, stable users are promoted on a schedule",
    "on": true, "variations": ["2026-11", "2026-12"],
    "rules": [{"id": "beta", "clauses": [{"attribute": "betaOptIn", "op": "in", "values": [true]}], "serve": {"variation": 1}}],
    "fallthrough": {"rollout": {"variations": [{"variation": 0}, {"variation": 1}], "schedule": [
      {"at": "2027-01-05T08:00:00Z", "weights": [100000, 0]},
      {"at": "2027-01-05T09:00:00Z", "weights": [90000, 10000]},
      {"at": "2027-01-07T08:00:00Z", "weights": [90000, 10000]},
      {"at": "2027-01-07T09:00:00Z", "weights": [50000, 50000]},
      {"at": "2027-01-09T08:00:00Z", "weights": [50000, 50000]},
      {"at": "2027-01-09T09:00:00Z", "weights": [0, 100000]}]}}},
  "new-search": {"tags": ["train:2026-12"], "on": true, "variations": [false, true], "offVariation": 0,
    "prerequisites": [{"flag": "channel", "variation": 1}], "fallthrough": {"variation": 1}},
  "dark-mode": {"tags": ["train:2026-12"], "on": true, "variations": [false, true], "offVariation": 0,
    "prerequisites": [{"flag": "channel", "variation": 1}], "fallthrough": {"variation": 1}},
  "bulk-export": {"tags": ["train:2026-12"], "description": "killed during beta: a bug in large exports",
    "on": false, "variations": [false, true], "offVariation": 0,
    "prerequisites": [{"flag": "channel", "variation": 1}], "fallthrough": {"variation": 1}}}}`

// instants at which the program looks.
var instants = []time.Time{
	time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC), // beta only
	time.Date(2027, 1, 5, 12, 0, 0, 0, time.UTC),   // 10 % of stable users
	time.Date(2027, 1, 7, 12, 0, 0, 0, time.UTC),   // 50 %
	time.Date(2027, 1, 9, 12, 0, 0, 0, time.UTC),   // everyone
}

// share is, at one instant, how many users of each channel see each feature.
type share struct {
	At             time.Time
	Stable, Beta   map[string]int // feature → users who see it
	StableN, BetaN int
}

func main() {
	if _, err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) ([]share, error) {
	ctx := context.Background()
	var shares []share
	for _, at := range instants {
		client, err := flags.New(flags.WithDocument([]byte(document)), flags.WithClock(func() time.Time { return at }))
		if err != nil {
			return nil, err
		}
		s := share{At: at, Stable: map[string]int{}, Beta: map[string]int{}, StableN: 1000, BetaN: 100}
		for i := range s.StableN + s.BetaN {
			beta := i >= s.StableN
			user := flags.NewContext(fmt.Sprintf("user-%d", i)).Set("betaOptIn", beta).Build()
			for _, feature := range []string{"new-search", "dark-mode", "bulk-export"} {
				if !client.Bool(ctx, feature, user, false) {
					continue
				}
				if beta {
					s.Beta[feature]++
				} else {
					s.Stable[feature]++
				}
			}
		}
		client.Close()
		shares = append(shares, s)
		fmt.Fprintf(out, "%s  stable: new-search %4d/%d, dark-mode %4d/%d, bulk-export %d   beta: new-search %d/%d, dark-mode %d/%d, bulk-export %d\n",
			at.Format("2006-01-02"), s.Stable["new-search"], s.StableN, s.Stable["dark-mode"], s.StableN, s.Stable["bulk-export"],
			s.Beta["new-search"], s.BetaN, s.Beta["dark-mode"], s.BetaN, s.Beta["bulk-export"])
	}
	return shares, nil
}
