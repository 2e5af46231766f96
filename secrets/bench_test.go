package secrets

import (
	"errors"
	"testing"

	"github.com/fernet/fernet-go"
)

// The benchmarks compare each Keyring call with the same operation on
// fernet-go, given the same 32-byte value and key. Run:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./secrets/
//
// Besides ns/op they report cpu-ns/op, the process's CPU time per
// operation, which other tenants of a shared machine disturb much less.

// loopCPU runs op in a b.Loop and reports cpu-ns/op.
func loopCPU(b *testing.B, op func() error) {
	cpu0 := processCPU()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	if cpu := processCPU() - cpu0; cpu0 > 0 {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

var errNotOpened = errors.New("does not open")

const benchValue = "sk-0123456789abcdef0123456789abc" // 32 bytes, an API-key-sized secret

func benchKeys(b *testing.B) (*Keyring, *fernet.Key) {
	k := mustKeyring(b, testSecretA)
	fk, err := fernet.DecodeKey(testSecretA + "=")
	if err != nil {
		b.Fatal(err)
	}
	if len(benchValue) != 32 || *fk != *k.keys[0] {
		b.Fatal("benchmark setup")
	}
	return k, fk
}

func BenchmarkEncrypt(b *testing.B) {
	k, fk := benchKeys(b)
	b.Run("keyring", func(b *testing.B) {
		loopCPU(b, func() error { _, err := k.Encrypt(benchValue); return err })
	})
	b.Run("fernet-go", func(b *testing.B) {
		msg := []byte(benchValue)
		loopCPU(b, func() error { _, err := fernet.EncryptAndSign(msg, fk); return err })
	})
}

func BenchmarkDecrypt(b *testing.B) {
	k, fk := benchKeys(b)
	tok, err := k.Encrypt(benchValue)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("keyring", func(b *testing.B) {
		loopCPU(b, func() error { _, err := k.Decrypt(tok); return err })
	})
	b.Run("fernet-go", func(b *testing.B) {
		btok, keys := []byte(tok), []*fernet.Key{fk}
		loopCPU(b, func() error {
			if fernet.VerifyAndDecrypt(btok, 0, keys) == nil {
				return errNotOpened
			}
			return nil
		})
	})
}

// BenchmarkDecryptPrevious opens a token made under the previous secret,
// the second key of the keyring: it costs one failed MAC check more than
// BenchmarkDecrypt.
func BenchmarkDecryptPrevious(b *testing.B) {
	old, fkOld := benchKeys(b)
	k := mustKeyring(b, testSecretB, testSecretA)
	if len(k.keys) != 2 {
		b.Fatal("want two keys")
	}
	fkNew, err := fernet.DecodeKey(testSecretB + "=")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := old.Encrypt(benchValue)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("keyring", func(b *testing.B) {
		loopCPU(b, func() error { _, err := k.Decrypt(tok); return err })
	})
	b.Run("fernet-go", func(b *testing.B) {
		btok, keys := []byte(tok), []*fernet.Key{fkNew, fkOld}
		loopCPU(b, func() error {
			if fernet.VerifyAndDecrypt(btok, 0, keys) == nil {
				return errNotOpened
			}
			return nil
		})
	})
}

func BenchmarkRotate(b *testing.B) {
	old := mustKeyring(b, testSecretA)
	k := mustKeyring(b, testSecretB, testSecretA)
	tok, err := old.Encrypt(benchValue)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := k.Rotate(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewKeyring is the one-time derivation cost per secret.
func BenchmarkNewKeyring(b *testing.B) {
	for name, secret := range map[string]string{
		"short": testShort,   // SHA-256 + legacy MT19937
		"long":  testSecretA, // base64
		"hkdf":  testHex,     // HKDF-SHA256
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := NewKeyring(secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
