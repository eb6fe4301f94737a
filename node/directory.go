package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/directory"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/statefile"
	"github.com/smsnmpd/smsnmpd/mib"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// contentSide is an SE's part of the directory: the publisher that sends
// its entries up to the farm's managers, the list of what it holds kept in
// the state directory (so a restarted SE re-announces what it published),
// and the optional content-root scanner.
type contentSide struct {
	pub   *directory.Publisher
	saved string // state file of the published entries; "" = not kept
	log   logrus.FieldLogger

	mu    sync.Mutex
	dirty bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// publishedFile is the state file of the entries an SE published.
const publishedFile = "published.json"

func startContent(cfg *config.Config, ep *rmtp.Endpoint, log logrus.FieldLogger) (*contentSide, error) {
	c := &contentSide{log: log}
	pc := publisherConfig(cfg, nil, ep.Channel(rmtp.ChannelDirectory), log)
	if cfg.Node.StateDir != "" {
		c.saved = filepath.Join(cfg.Node.StateDir, publishedFile)
		pc.InitialFrom = readPublished(c.saved)
	}
	pub, err := directory.NewPublisher(ep, pc)
	if err != nil {
		return nil, err
	}
	c.pub = pub
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Snapshot requests between managers go down to every member; an SE
	// has nothing to serve and drains them so they are not counted lost.
	drain := ep.Channel(rmtp.ChannelTransfer)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			if _, err := drain.Receive(ctx); err != nil {
				return
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		c.saveLoop(ctx)
	}()
	if root := cfg.SE.ContentRoot; root != "" {
		sc, err := directory.NewScanner(directory.ScannerConfig{Root: root, MaxKey: cfg.Directory.MaxKeyLen,
			Interval: cfg.SE.ScanInterval.Duration, Logger: log})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("se.content_root: %w", err)
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := sc.Run(ctx, c); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Error("content root scanner stopped")
			}
		}()
	}
	return c, nil
}

// Add and Remove publish through the publisher and mark the state file
// for saving; the scanner and the control socket both use them.
func (c *contentSide) Add(e directory.Entry) error {
	if err := c.pub.Add(e); err != nil {
		return err
	}
	c.markDirty()
	return nil
}

func (c *contentSide) Remove(key string) error {
	if err := c.pub.Remove(key); err != nil {
		return err
	}
	c.markDirty()
	return nil
}

func (c *contentSide) markDirty() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

// saveLoop writes the published entries at most twice a second, so a burst
// of publishes costs one write, and once more when the SE stops.
func (c *contentSide) saveLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.save()
			return
		case <-t.C:
			c.save()
		}
	}
}

func (c *contentSide) save() {
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = false
	c.mu.Unlock()
	if !dirty || c.saved == "" {
		return
	}
	if err := writePublished(c.saved, c.pub.Entries()); err != nil {
		c.markDirty()
		c.log.WithError(err).Error("saving the published entries failed; retrying")
	}
}

func (c *contentSide) close() {
	c.cancel()
	c.wg.Wait()
	_ = c.pub.Close()
}

// readPublished streams the entries of the state file into the
// publisher, one at a time (10^6 entries are some 60 MB of JSON: neither
// the file nor a slice of its entries is held beside the publisher's
// own). A missing file is no entry.
func readPublished(path string) func(add func(directory.Entry) error) error {
	return func(add func(directory.Entry) error) error {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("published entries: %w", err)
		}
		defer f.Close()
		dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
		bad := func(err error) error {
			return fmt.Errorf("published entries in %s at byte %d: %w", path, dec.InputOffset(), err)
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			if err == nil {
				err = fmt.Errorf("want a JSON array, got %v", t)
			}
			return bad(err)
		}
		for dec.More() {
			var e directory.Entry
			if err := dec.Decode(&e); err != nil {
				return bad(err)
			}
			if err := add(e); err != nil {
				return bad(err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return bad(fmt.Errorf("data after the array"))
		}
		return nil
	}
}

// writePublished replaces the state file with entries, encoded one at a
// time into the file (no second copy of the list as JSON in memory).
func writePublished(path string, entries []directory.Entry) error {
	return statefile.WriteFunc(path, func(w io.Writer) error { // a crash leaves the old list or the new
		bw := bufio.NewWriterSize(w, 256<<10)
		bw.WriteByte('[')
		for i := range entries {
			if i > 0 {
				bw.WriteByte(',')
			}
			b, err := json.Marshal(&entries[i])
			if err != nil {
				return err
			}
			bw.Write(b)
		}
		bw.WriteByte(']')
		return bw.Flush()
	})
}

// startDirectory runs a manager's directory of its level and catches up
// with the farm: by state transfer from another manager when there is
// one, otherwise by asking the SEs to re-announce. event (nil: none)
// hears how the catch-up ended.
func startDirectory(cfg *config.Config, ep *rmtp.Endpoint, event func(Event), log logrus.FieldLogger) (*directory.Manager, context.CancelFunc, error) {
	m, err := directory.NewManager(ep, directory.ManagerConfig{Store: storeConfig(cfg), Logger: log},
		ep.Channel(rmtp.ChannelDirectory), ep.Channel(rmtp.ChannelTransfer))
	if err != nil {
		return nil, nil, err
	}
	if event == nil {
		event = func(Event) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Hear the farm first (a few heartbeats), so every update from
		// then on reaches this manager directly while it catches up.
		select {
		case <-time.After(3 * cfg.RMTP.Heartbeat.Duration):
		case <-ctx.Done():
			return
		}
		cctx, ccancel := context.WithTimeout(ctx, time.Minute)
		defer ccancel()
		res, err := m.CatchUp(cctx) // the directory logs the transfer
		switch {
		case err == nil:
			event(Event{Kind: EventDirectory, Detail: fmt.Sprintf("caught up from manager %d: %d records in %v", res.Donor, res.Records, res.Elapsed.Round(time.Millisecond))})
		case errors.Is(err, directory.ErrNoDonor):
			if err := m.RequestResync(cctx); err != nil && ctx.Err() == nil {
				log.WithError(err).Warn("directory: asking the SEs to re-announce failed")
				event(Event{Kind: EventDirectory, Detail: "no other manager to catch up from; asking the SEs to re-announce failed: " + err.Error()})
			} else if err == nil {
				event(Event{Kind: EventDirectory, Detail: "no other manager to catch up from: the SEs were asked to re-announce"})
			}
		case err != nil:
			if ctx.Err() == nil {
				log.WithError(err).Warn("directory: catch-up failed; the SEs' updates keep arriving")
				event(Event{Kind: EventDirectory, Detail: "catch-up failed: " + err.Error()})
			}
		}
	}()
	return m, cancel, nil
}

// publishLimit is directory.publish_rate and publish_burst: the one
// setting of an SE's updates. The SE's publisher sends at it and the farm's
// managers admit it; were they different, the managers would refuse what
// the SE sends (issue 14: the SE kept the library's 10,000/s against the
// managers' 1,000/s). Flow control repairs a mismatch between two hosts'
// files, at the cost of refusals; one process never has one.
func publishLimit(cfg *config.Config) (rate, burst float64) {
	return float64(cfg.Directory.PublishRate), float64(cfg.Directory.PublishBurst)
}

// publisherConfig is an SE's side of the directory.
func publisherConfig(cfg *config.Config, initial []directory.Entry, inbox rmtp.Receiver, log logrus.FieldLogger) directory.PublisherConfig {
	rate, burst := publishLimit(cfg)
	return directory.PublisherConfig{
		Location: nodeLocation(cfg),
		MaxKey:   cfg.Directory.MaxKeyLen,
		Rate:     rate,
		Burst:    burst,
		MaxHeld:  cfg.Directory.MaxEntries,
		Initial:  initial,
		Inbox:    inbox,
		Logger:   log,
	}
}

// storeConfig is a manager's directory of its level. The publish limit
// applies where the SEs publish, the farm; above it the origins' updates
// come from child managers that applied it already, and a forwarder's
// re-announcement sends a whole unit at once (the store's default there:
// no limit).
func storeConfig(cfg *config.Config) directory.StoreConfig {
	sc := directory.StoreConfig{
		Level:        directory.Level(cfg.Node.Level),
		Unit:         nodeLocation(cfg),
		MaxKey:       cfg.Directory.MaxKeyLen,
		MaxEntries:   cfg.Directory.MaxEntries,
		TombstoneTTL: cfg.Directory.TombstoneTTL.Duration,
	}
	if sc.Level <= directory.LevelFarm { // 0 is the farm too (StoreConfig)
		sc.Rate, sc.Burst = publishLimit(cfg)
	}
	return sc
}

// directoryRows adapts the store to smDirectoryTable.
type directoryRows struct{ m *directory.Manager }

func (d directoryRows) Count() int { return d.m.Store().Count() }

// Flow is what the store refused of the engines' updates (the farm
// level's flow control; zero above it).
func (d directoryRows) Flow() mib.DirectoryFlow {
	c := d.m.Store().Counters()
	return mib.DirectoryFlow{RefusedOps: c.RateLimited, RejectedOps: c.Rejected, Episodes: d.m.Counters().RefusalEpisodes}
}

func (d directoryRows) Entries(limit int) []mib.DirectoryEntry {
	infos := d.m.Store().Entries(0, limit, time.Now())
	out := make([]mib.DirectoryEntry, len(infos))
	for i, e := range infos {
		out[i] = mib.DirectoryEntry{ID: e.ID, Key: e.Key, CDN: e.Location.CDN, DataCenter: e.Location.DataCenter,
			Farm: e.Location.Farm, Engine: e.Location.Engine, Version: e.Version.String(), Stored: e.Stored}
	}
	return out
}

// nodeLocation is where a node sits in the tree: its own SE id for an SE,
// its level's unit for a manager.
func nodeLocation(cfg *config.Config) directory.Location {
	loc := directory.Location{CDN: cfg.Node.CDN, DataCenter: cfg.Node.DataCenter, Farm: cfg.Node.Farm}
	if cfg.Node.Role == config.RoleSE {
		loc.Engine = cfg.Node.ID
		return loc
	}
	return directory.Level(cfg.Node.Level).Unit(loc)
}
