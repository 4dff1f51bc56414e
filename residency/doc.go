// Package residency decides who owns which session: node identity, liveness
// leases, ownership epochs, the adoption protocol, fencing, the negative-lookup
// cache and single-flight lookups. It never imports the adapter.
package residency
