package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/variables"
)

// superuserSettings reads LANGFLOW_SUPERUSER, LANGFLOW_SUPERUSER_PASSWORD
// and LANGFLOW_NEW_USER_IS_ACTIVE into cfg, with Langflow's rules: with
// auto-login on the superuser is always "langflow" and the password is
// ignored (the UI logs in by itself); with auto-login off Langflow's former
// default password "langflow" is refused, as Langflow 1.11 refuses it.
func superuserSettings(cfg *Config, getenv func(string) string) error {
	cfg.Superuser = strings.TrimSpace(getenv("LANGFLOW_SUPERUSER"))
	cfg.SuperuserPassword = getenv("LANGFLOW_SUPERUSER_PASSWORD")
	var err error
	// getenv does not tell unset from empty: an empty value is the default
	// (false) here; a set one is parsed as every boolean setting is.
	if v := getenv("LANGFLOW_NEW_USER_IS_ACTIVE"); v != "" {
		if cfg.NewUserIsActive, err = envbool.Parse("LANGFLOW_NEW_USER_IS_ACTIVE", v); err != nil {
			return err
		}
	}
	if cfg.Superuser == "" || cfg.Auth.AutoLogin {
		cfg.Superuser = SuperuserName
	}
	if cfg.Auth.AutoLogin {
		cfg.SuperuserPassword = ""
		return nil
	}
	if variables.ValidateName(cfg.Superuser) != nil {
		return errors.New("LANGFLOW_SUPERUSER must be valid UTF-8 without control characters, at most 255 bytes")
	}
	if cfg.SuperuserPassword == LegacyDefaultPassword {
		return errors.New("LANGFLOW_SUPERUSER_PASSWORD cannot use the legacy default password")
	}
	if len(cfg.SuperuserPassword) > MaxPasswordBytes {
		return fmt.Errorf("LANGFLOW_SUPERUSER_PASSWORD: %w", ErrPasswordTooLong)
	}
	return nil
}

// tokenSettings reads the login token lifetimes (seconds, as in Langflow).
func tokenSettings(cfg *Config, getenv func(string) string) error {
	cfg.AccessTokenTTL, cfg.RefreshTokenTTL = DefaultAccessTTL, DefaultRefreshTTL
	for _, s := range []struct {
		name string
		dst  *time.Duration
	}{
		{"LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS", &cfg.AccessTokenTTL},
		{"LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS", &cfg.RefreshTokenTTL},
	} {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s must be a positive number of seconds, got %q", s.name, v)
		}
		*s.dst = time.Duration(n) * time.Second
	}
	return nil
}
