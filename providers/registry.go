package providers

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Factory opens a provider with the given settings; it fails when a
// required setting is missing.
type Factory func(ctx context.Context, s Settings) (Provider, error)

// Registry maps provider names to factories.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}}
}

// Register adds a provider under name; a second registration of the same
// name is a programming error.
func (r *Registry) Register(name string, f Factory) {
	if _, dup := r.factories[name]; dup {
		panic("providers: duplicate provider " + name)
	}
	r.factories[name] = f
}

// Names lists the registered providers in order.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open builds the named provider.
func (r *Registry) Open(ctx context.Context, name string, s Settings) (Provider, error) {
	f, ok := r.factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: choose one of %s", name, strings.Join(r.Names(), ", "))
	}
	p, err := f(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", name, err)
	}
	return p, nil
}
