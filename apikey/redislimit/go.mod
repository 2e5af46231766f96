module github.com/keyflow-dev/keyflow/apikey/redislimit

go 1.26.0

require (
	github.com/keyflow-dev/keyflow v0.0.0
	github.com/redis/go-redis/v9 v9.24.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/keyflow-dev/keyflow => ../..
