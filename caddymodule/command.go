package caddymodule

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "portalgate",
		Usage: "link|revoke|tenant|hash-key [flags]",
		Short: "Mints and revokes magic links, manages sub-accounts, hashes API keys",
		Long: `
Portalgate's commands:

  caddy portalgate link --app courses --id c_123 [--email ...] [--name ...]
      Mints a magic link through the running Caddy's admin API and prints it.

  caddy portalgate revoke --link <id> | --user <user-id>
      Revokes a link before it is used, or every session and older link of a user.

  caddy portalgate tenant add --id acme --portal https://portal.acme.example [--app courses=https://...]
  caddy portalgate tenant list | remove --id acme
      Adds, lists and removes sub-accounts (tenants) on every instance sharing the store.

  caddy portalgate hash-key [--key <key>]
      Hashes an API key for api_key_hash (reads stdin when --key is absent).
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(linkCommand(), revokeCommand(), tenantCommand(), hashKeyCommand())
		},
	})
}

func linkCommand() *cobra.Command {
	var (
		req     MintRequest
		userTyp string
		address string
		send    bool
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "link --app <app|portal> --id <user-id> [flags]",
		Short: "Mints a magic link and prints it",
		Long: `Mints a magic link through the admin API of the running Caddy, so no
secret is needed on the command line. Prints the link on one line, and on
stderr its id (what revoke --link takes) and end; --json prints the whole
answer (url, id, expires_at, delivery) instead. With --send the mailer also
e-mails it to --email, and the delivery is said on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.User.Type = identity.Type(userTyp)
			if send {
				req.Send = "email"
			}
			resp, err := mintViaAdmin(address, req)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(resp)
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.URL)
			fmt.Fprintf(cmd.ErrOrStderr(), "link %s, valid until %s; to withdraw it: caddy portalgate revoke --link %s\n",
				resp.ID, resp.ExpiresAt.Local().Format(time.DateTime), resp.ID)
			if send {
				fmt.Fprintf(cmd.ErrOrStderr(), "e-mail to %s: %s\n", req.User.Email, resp.Delivery)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "sub-account (tenant) whose app the link opens (default: the user's location's, or the default portal)")
	f.StringVar(&req.App, "app", "", "app the link opens, or \"portal\" for the portal home (required)")
	f.StringVar(&req.User.ID, "id", "", "user id (required)")
	f.StringVar(&req.User.Email, "email", "", "user e-mail")
	f.StringVar(&req.User.Name, "name", "", "user display name")
	f.StringVar(&userTyp, "type", "contact", "user type: contact, subaccount_user or agency_user")
	f.StringVar(&req.User.Location, "location", "", "sub-account (location) id")
	f.StringVar(&req.Path, "path", "/", "where the link lands inside the app")
	f.StringVar(&req.TTL, "ttl", "", "how long the link is valid, e.g. 10m (default: the configured link_ttl)")
	f.IntVar(&req.Uses, "uses", 1, "how many times the link can be used")
	f.BoolVar(&send, "send", false, "also e-mail the link to --email through the configured mailer")
	f.BoolVar(&asJSON, "json", false, "print the answer as JSON: url, id, expires_at, delivery")
	f.StringVar(&address, "address", caddy.DefaultAdminListen, "the admin API address of the running Caddy")
	_ = c.MarkFlagRequired("app")
	_ = c.MarkFlagRequired("id")
	return c
}

func mintViaAdmin(address string, req MintRequest) (MintResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return MintResponse{}, err
	}
	var out MintResponse
	err = adminCall(address, http.MethodPost, "links", bytes.NewReader(body), &out)
	return out, err
}

// adminCall sends one call to the link API on the running Caddy's admin
// endpoint and decodes the JSON answer into out.
func adminCall(address, method, route string, body io.Reader, out any) error {
	resp, err := caddycmd.AdminAPIRequest(address, method, adminPrefix+route, nil, body)
	if err != nil {
		return adminError(address, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}

// adminError says why an admin API call failed: what the API answered when
// it did (Caddy reports a status of 400 or more as "caddy responded with
// error: HTTP <status>: <body>"), and that Caddy may not be running only
// when nothing answered.
func adminError(address string, err error) error {
	msg := err.Error()
	_, answer, refused := strings.Cut(msg, "caddy responded with error: ")
	if !refused {
		return fmt.Errorf("calling the admin API at %s (is Caddy running, with its admin endpoint there?): %w", address, err)
	}
	status, body, _ := strings.Cut(answer, ": ")
	var problem struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &problem) == nil && problem.Error != "" {
		return fmt.Errorf("the admin API refused (%s): %s", status, problem.Error)
	}
	return fmt.Errorf("the admin API refused: %s", answer)
}

func revokeCommand() *cobra.Command {
	var linkID, userID, address string
	c := &cobra.Command{
		Use:   "revoke --link <id> | --user <user-id>",
		Short: "Revokes a link, or every session and older link of a user",
		Long: `Revokes, through the admin API of the running Caddy, either one link before
it is used (--link, the id the mint printed) or a user (--user): every session of
that user ends at once and every link issued to them until now is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			var err error
			switch {
			case (linkID == "") == (userID == ""):
				return errors.New("give exactly one of --link and --user")
			case linkID != "":
				err = adminCall(address, http.MethodDelete, "links/"+url.PathEscape(linkID), nil, &out)
			default:
				err = adminCall(address, http.MethodPost, "users/"+url.PathEscape(userID)+"/revoke", nil, &out)
			}
			if err != nil {
				return err
			}
			if n, ok := out["sessions_ended"]; ok {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked user %s: %v sessions ended\n", userID, n)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked link %s\n", linkID)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&linkID, "link", "", "id of the link to revoke")
	f.StringVar(&userID, "user", "", "id of the user to revoke")
	f.StringVar(&address, "address", caddy.DefaultAdminListen, "the admin API address of the running Caddy")
	return c
}

func tenantCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tenant add|list|remove",
		Short: "Adds, lists and removes sub-accounts (tenants)",
		Long: `Manages the sub-accounts served by the catch-all site (a portalgate directive
without an app), through the admin API of the running Caddy. A change is
served at once and, through the store, on every instance sharing it.`,
	}
	c.AddCommand(tenantAddCommand(), tenantListCommand(), tenantRemoveCommand())
	return c
}

func tenantAddCommand() *cobra.Command {
	var (
		t       store.Tenant
		apps    []string
		replace bool
		address string
	)
	c := &cobra.Command{
		Use:   "add --id <location-id> [--portal <url>] [--app <name>[=<url>]]... [flags]",
		Short: "Adds a sub-account, or with --replace changes one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range apps {
				name, u, _ := strings.Cut(a, "=")
				if t.Apps == nil {
					t.Apps = map[string]string{}
				}
				t.Apps[name] = u
			}
			body, err := json.Marshal(t)
			if err != nil {
				return err
			}
			method, route := http.MethodPost, "tenants"
			if replace {
				method, route = http.MethodPut, "tenants/"+url.PathEscape(t.ID)
			}
			var out store.Tenant
			if err := adminCall(address, method, route, bytes.NewReader(body), &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s: portal %s\n", out.ID, cmp.Or(out.Portal, "at the host pattern's host"))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&t.ID, "id", "", "the sub-account's location id (required)")
	f.StringVar(&t.Name, "name", "", "the portal's name on its pages and e-mails")
	f.StringVar(&t.Portal, "portal", "", "the portal's URL (default: from host_pattern)")
	f.StringArrayVar(&apps, "app", nil, "an app, name=URL, or name alone for host_pattern's host (repeatable; default: the configured apps)")
	f.StringVar(&t.Brand.Color, "color", "", "the brand colour, such as #0f766e")
	f.StringVar(&t.Brand.Logo, "logo", "", "an https URL of the logo")
	f.StringVar(&t.Brand.SupportEmail, "support-email", "", "the address people may write to")
	f.StringVar(&t.Brand.SenderName, "sender-name", "", "the name the e-mails come from")
	f.BoolVar(&replace, "replace", false, "change the sub-account of this id instead of adding one")
	f.StringVar(&address, "address", caddy.DefaultAdminListen, "the admin API address of the running Caddy")
	_ = c.MarkFlagRequired("id")
	return c
}

func tenantListCommand() *cobra.Command {
	var (
		address string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "Lists the sub-accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all := []store.Tenant{}
			for after := ""; ; {
				var page struct {
					Tenants []store.Tenant `json:"tenants"`
					Next    string         `json:"next"`
				}
				if err := adminCall(address, http.MethodGet, "tenants?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
					return err
				}
				all = append(all, page.Tenants...)
				if page.Next == "" {
					break
				}
				after = page.Next
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(all)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tPORTAL\tAPPS")
			for _, t := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Portal, strings.Join(slices.Sorted(maps.Keys(t.Apps)), ","))
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the tenants as JSON")
	c.Flags().StringVar(&address, "address", caddy.DefaultAdminListen, "the admin API address of the running Caddy")
	return c
}

func tenantRemoveCommand() *cobra.Command {
	var id, address string
	c := &cobra.Command{
		Use:   "remove --id <location-id>",
		Short: "Removes a sub-account: its hosts serve nothing, its sessions and links open nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := adminCall(address, http.MethodDelete, "tenants/"+url.PathEscape(id), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed tenant %s\n", id)
			return nil
		},
	}
	c.Flags().StringVar(&id, "id", "", "the sub-account's location id (required)")
	c.Flags().StringVar(&address, "address", caddy.DefaultAdminListen, "the admin API address of the running Caddy")
	_ = c.MarkFlagRequired("id")
	return c
}

func hashKeyCommand() *cobra.Command {
	var key string
	c := &cobra.Command{
		Use:   "hash-key [--key <key>]",
		Short: "Hashes an API key for api_key_hash",
		Long: `Prints the SHA-256 hash (hex) of an API key, for api_key_hash in the
Caddyfile. The key is read from --key, or from stdin (not echoed on a terminal).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				var err error
				if key, err = readKeyInput(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			if key == "" {
				return errors.New("the key is empty")
			}
			sum := sha256.Sum256([]byte(key))
			fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(sum[:]))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the API key to hash (default: read from stdin)")
	return c
}

func readKeyInput(in io.Reader) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(os.Stderr, "Enter API key: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
