module github.com/portalgate/portalgate

go 1.26.8

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
