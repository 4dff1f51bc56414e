// Package storeconf is the one bridge from package adapter to the internal
// packages that read the Cassandra store beside the nodes (internal/inspect).
// Such a reader must connect exactly as a node with the same configuration
// would and report errors in the adapter's terms, yet adapter cannot export a
// conversion that returns store.Options without putting an internal type into
// its public API, and cannot import its readers (they import it).
//
// So adapter lends its two boundary conversions here, in an init function:
// a package that imports adapter (and so has run that init) may call them.
// Nothing else should go through this package.
package storeconf

import "github.com/holdover/holdover/internal/store"

var (
	// FromConfig converts an adapter.Config (cfg's dynamic type; anything
	// else panics) into the store's options, as a node opening with it
	// would: it validates cfg and loads its TLS files, and every error is an
	// *adapter.ConfigError. Set by package adapter.
	FromConfig func(cfg any) (store.Options, error)

	// Errors expresses an error of the store in the adapter's errors (a
	// *store.LimitError becomes an *adapter.LimitError, store.ErrCorrupt
	// matches adapter.ErrCorrupt, ...); other errors come back unchanged.
	// Set by package adapter.
	Errors func(error) error
)
