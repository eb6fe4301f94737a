package rmtp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smsnmpd/smsnmpd/internal/waitfor"
	"github.com/smsnmpd/smsnmpd/rmtp"
	"github.com/smsnmpd/smsnmpd/rmtp/rmtptest"
)

// inNetns runs f on a thread switched into a named network namespace.
// Sockets opened by f stay in that namespace for their whole life, so one
// test process can hold members on several "hosts".
func inNetns(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// leave the thread locked: the runtime discards it
		return fmt.Errorf("restoring the namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// needNft finds nft, installing it when root and missing.
func needNft(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err == nil {
		return
	}
	out, err := exec.Command("apt-get", "install", "-y", "nftables").CombinedOutput()
	if err == nil {
		if _, err := exec.LookPath("nft"); err == nil {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("nftables missing and not installable: %v\n%s", err, out)
	}
	t.Skipf("nftables missing and not installable: %v", err)
}

// TestNetNSBridgeLoss puts a sender and four receivers in their own
// network namespaces on a bridge (itself in a namespace: nothing is
// created in the host's), drops 5 % of rmtp's datagrams independently on
// every bridge port with nftables (bridge family, forward hook), and checks
// the delivery guarantees and that NAK suppression happens.
func TestNetNSBridgeLoss(t *testing.T) {
	needRoot(t, "creates network namespaces and nftables rules")
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("iproute2 missing")
		}
		t.Skip("iproute2 missing")
	}
	needNft(t)
	checkNoLeak(t)
	const hosts = 5 // h1 sends, h2..h5 receive
	p := fmt.Sprintf("rt%d", os.Getpid()%100000)
	br := p + "br"
	t.Cleanup(func() {
		for i := 1; i <= hosts; i++ {
			exec.Command("ip", "netns", "del", fmt.Sprintf("%sh%d", p, i)).Run()
		}
		exec.Command("ip", "netns", "del", br).Run()
	})
	run(t, "ip", "netns", "add", br)
	run(t, "ip", "-n", br, "link", "set", "lo", "up")
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	for i := 1; i <= hosts; i++ {
		h := fmt.Sprintf("%sh%d", p, i)
		run(t, "ip", "netns", "add", h)
		run(t, "ip", "-n", h, "link", "set", "lo", "up")
		run(t, "ip", "-n", br, "link", "add", fmt.Sprintf("v%d", i), "type", "veth", "peer", "name", "eth0", "netns", h)
		run(t, "ip", "-n", br, "link", "set", fmt.Sprintf("v%d", i), "master", "br0", "up")
		run(t, "ip", "-n", h, "addr", "add", fmt.Sprintf("10.250.0.%d/24", i), "dev", "eth0")
		run(t, "ip", "-n", h, "link", "set", "eth0", "up")
	}
	down, up := rmtptest.Groups(t)
	var rules strings.Builder
	for i := 1; i <= hosts; i++ {
		fmt.Fprintf(&rules, "    oifname \"v%d\" udp dport %d numgen random mod 100 < 5 counter drop\n", i, down.Port())
	}
	nft := exec.Command("ip", "netns", "exec", br, "nft", "-f", "-")
	nft.Stdin = strings.NewReader("table bridge rmtploss {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n" +
		rules.String() + "  }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	keys := rmtptest.Keys(t)
	var eps []*rmtp.Endpoint
	for i := 1; i <= hosts; i++ {
		var tr *rmtp.UDP
		err := inNetns(fmt.Sprintf("%sh%d", p, i), func() error {
			var err error
			tr, err = rmtp.ListenMulticast(rmtp.MulticastConfig{Interface: "eth0", Down: down, Up: up, JoinUp: i == 1})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		role, id := rmtp.Engine, rmtp.NodeID(100+i)
		if i == 1 {
			role, id = rmtp.Manager, 1
		}
		e, err := rmtp.New(tr, rmtp.Config{Node: id, Role: role, Keys: keys, DownAfter: lenientDown})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		eps = append(eps, e)
	}
	mgr := eps[0]
	waitfor.True(t, 10*time.Second, "manager sees the engines across the bridge", func() bool { return livePeers(mgr) == hosts-1 })

	rng := rand.New(rand.NewPCG(11, 12))
	want := make([][]byte, 300)
	for i := range want {
		want[i] = payload(rng, i, 1+rng.IntN(48<<10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range eps[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := collect(ctx, e, 1, want); err != nil {
				t.Error(err)
			}
		}()
	}
	for i, m := range want {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := mgr.Send(sctx, 1, rmtp.Down, m)
		scancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	wg.Wait()

	var naks, sup uint64
	for _, e := range eps[1:] {
		s := e.Stats()
		naks += s.NaksSent
		sup += s.NaksSuppressed
	}
	ruleset := run(t, "ip", "netns", "exec", br, "nft", "list", "table", "bridge", "rmtploss")
	var dropped int
	for _, m := range regexp.MustCompile(`packets (\d+)`).FindAllStringSubmatch(ruleset, -1) {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	s := mgr.Stats()
	t.Logf("nftables dropped %d datagrams; receivers sent %d NAKs, suppressed %d; sender retransmitted %d", dropped, naks, sup, s.Retransmits)
	if dropped == 0 {
		t.Error("nftables dropped nothing: the loss rules did not apply")
	}
	if sup == 0 {
		t.Error("the NAK-suppression counter did not move")
	}
}
