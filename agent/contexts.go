package agent

import (
	"slices"
	"sync"
)

// Contexts holds one Tree per SNMP context name; "" is the default context.
// Both frontends look trees up here, so an SE registered under context
// "se3" answers through AgentX and the UDP agent alike.
type Contexts struct {
	mu    sync.RWMutex
	trees map[string]*Tree
}

// NewContexts returns a set holding an empty default context.
func NewContexts() *Contexts {
	return &Contexts{trees: map[string]*Tree{"": NewTree()}}
}

// Default returns the tree of the default context.
func (c *Contexts) Default() *Tree { return c.Tree("") }

// Tree returns the tree of a context, or nil.
func (c *Contexts) Tree(name string) *Tree {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.trees[name]
}

// Ensure returns the tree of a context, creating it if needed.
func (c *Contexts) Ensure(name string) *Tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trees[name]
	if t == nil {
		t = NewTree()
		c.trees[name] = t
	}
	return t
}

// Remove drops a context (not the default one).
func (c *Contexts) Remove(name string) {
	if name == "" {
		return
	}
	c.mu.Lock()
	delete(c.trees, name)
	c.mu.Unlock()
}

// Names lists the contexts in order.
func (c *Contexts) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.trees))
	for n := range c.trees {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Set makes t the tree of a context, replacing any there; tests and the
// demo use it to serve a tree built elsewhere.
func (c *Contexts) Set(name string, t *Tree) {
	c.mu.Lock()
	c.trees[name] = t
	c.mu.Unlock()
}
