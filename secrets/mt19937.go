package secrets

import "crypto/sha512"

// This file ports the parts of CPython's random module that Langflow ≤ 1.10.0
// used to turn a short secret into a Fernet key (see
// docs/langflow-compatibility.md#fernet-key-derivation):
//
//	random.seed(s)                                # s a str: "version 2" seeding
//	bytes(random.getrandbits(8) for _ in range(32))
//
// Seeding with a str computes a = int.from_bytes(utf8(s) + sha512(utf8(s)), "big"),
// splits |a| into 32-bit words, least significant first (dropping leading
// zero words, as _PyLong_NumBits does), and calls MT19937's init_by_array.
// getrandbits(8) is genrand_uint32() >> 24. The generator is local to each
// call: nothing global is reseeded (Langflow's version reseeded Python's
// global PRNG as a side effect).

const (
	mtN         = 624
	mtM         = 397
	mtMatrixA   = 0x9908b0df
	mtUpperMask = 0x80000000
	mtLowerMask = 0x7fffffff
)

type mt19937 struct {
	mt  [mtN]uint32
	mti int
}

func (r *mt19937) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < mtN; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.mti = mtN
}

// initByArray is the reference init_by_array (mt19937ar.c, CPython
// _randommodule.c). key must not be empty.
func (r *mt19937) initByArray(key []uint32) {
	r.initGenrand(19650218)
	i, j := 1, 0
	k := max(mtN, len(key))
	for ; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= mtN {
			r.mt[0] = r.mt[mtN-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = mtN - 1; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= mtN {
			r.mt[0] = r.mt[mtN-1]
			i = 1
		}
	}
	r.mt[0] = 0x80000000 // MSB is 1, assuring a non-zero initial array
}

func (r *mt19937) uint32() uint32 {
	if r.mti >= mtN {
		var kk int
		for kk = 0; kk < mtN-mtM; kk++ {
			y := (r.mt[kk] & mtUpperMask) | (r.mt[kk+1] & mtLowerMask)
			r.mt[kk] = r.mt[kk+mtM] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
		}
		for ; kk < mtN-1; kk++ {
			y := (r.mt[kk] & mtUpperMask) | (r.mt[kk+1] & mtLowerMask)
			r.mt[kk] = r.mt[kk+(mtM-mtN)] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
		}
		y := (r.mt[mtN-1] & mtUpperMask) | (r.mt[0] & mtLowerMask)
		r.mt[mtN-1] = r.mt[mtM-1] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
		r.mti = 0
	}
	y := r.mt[r.mti]
	r.mti++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// pythonSeedWords returns the init_by_array key CPython's random.seed(s)
// uses for a str s (version 2 seeding).
func pythonSeedWords(s string) []uint32 {
	digest := sha512.Sum512([]byte(s))
	b := make([]byte, 0, len(s)+len(digest))
	b = append(append(b, s...), digest[:]...)
	for len(b) > 0 && b[0] == 0 { // the int's most significant zero bytes carry no bits
		b = b[1:]
	}
	if len(b) == 0 {
		return []uint32{0}
	}
	words := make([]uint32, (len(b)+3)/4)
	for i := range b { // b is big-endian; words are little-endian, least significant first
		pos := len(b) - 1 - i // byte significance: 0 is least significant
		words[pos/4] |= uint32(b[i]) << (8 * (pos % 4))
	}
	return words
}

// legacyMTKey returns the 32 key bytes Langflow ≤ 1.10.0 derived from a
// short secret: random.seed(secret); bytes(getrandbits(8) for _ in range(32)).
func legacyMTKey(secret string) [32]byte {
	var r mt19937
	r.initByArray(pythonSeedWords(secret))
	var key [32]byte
	for i := range key {
		key[i] = byte(r.uint32() >> 24)
	}
	return key
}
