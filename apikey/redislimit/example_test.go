package redislimit_test

import (
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/redislimit"
)

// Instances that share keys in one store share rate limits through Redis.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := apikey.NewManager(apikey.Config{Limiter: lim}) // and the shared Store
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
}
