package codec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Hasher turns a customer id into the keyed hash stored in the CustomerRef
// search attribute: HMAC-SHA256 under a key of its own, so that the
// attribute, which no codec covers, names no customer, and nobody without the
// key can test a guessed id against it. It is deterministic, so operators
// holding the key can still find a customer's runs.
type Hasher struct {
	ring *KeyRing
}

// NewHasher hashes with ring's current key; older keys still serve lookups.
func NewHasher(ring *KeyRing) *Hasher { return &Hasher{ring: ring} }

// CustomerRef is the current key's hash of a customer id.
func (h *Hasher) CustomerRef(customerID string) string {
	return customerRef(h.ring.keys[0], customerID)
}

// CustomerRefs are the hashes of a customer id under every key of the ring,
// current first: runs tagged before a rotation are found too.
func (h *Hasher) CustomerRefs(customerID string) []string {
	refs := make([]string, len(h.ring.keys))
	for i, k := range h.ring.keys {
		refs[i] = customerRef(k, customerID)
	}
	return refs
}

// customerRef prefixes the key id, so a lookup knows which key tagged a run.
func customerRef(k Key, customerID string) string {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte("loanflow/customer-ref/v1\x00"))
	m.Write([]byte(customerID))
	// 128 bits are plenty to tell customers apart and keep the keyword short.
	return k.ID + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}
