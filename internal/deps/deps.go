package deps
import (
 _ "github.com/go-mysql-org/go-mysql/canal"
 _ "github.com/redis/go-redis/v9"
 _ "go.mongodb.org/mongo-driver/v2/mongo"
 _ "github.com/segmentio/kafka-go"
 _ "github.com/rabbitmq/amqp091-go"
 _ "gopkg.in/yaml.v3"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/sync/errgroup"
 _ "github.com/twmb/franz-go/pkg/kfake"
 _ "go.uber.org/goleak"
 _ "github.com/go-sql-driver/mysql"
)
