// Command caddy is Caddy with its standard modules and Portalgate.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/portalgate/portalgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
