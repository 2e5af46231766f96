package accounts

import (
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
)

// BcryptCost is the bcrypt work factor: passlib's default (Langflow's). A
// variable so that tests hash quickly.
var BcryptCost = 12

// CompareHash checks a password against a bcrypt hash. A variable so that a
// test can see that an unknown user costs one comparison too.
var CompareHash = bcrypt.CompareHashAndPassword

// HashPassword returns the bcrypt hash of password; config.ErrPasswordTooLong
// beyond bcrypt's 72 bytes.
func HashPassword(password string) (string, error) {
	if len(password) > config.MaxPasswordBytes {
		return "", config.ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// DummyHash is compared against when the user is unknown or has no
// password, so that such a login costs one bcrypt comparison like any other.
var DummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(ids.New()), BcryptCost)
	if err != nil { // only for a cost out of range, which BcryptCost is not
		panic(err)
	}
	return h
})
