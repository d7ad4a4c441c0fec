// Package api serves the REST API under /2010-04-01, shaped like the
// well-known CPaaS Accounts API so that existing helper libraries work with a
// base-URL change: snake_case JSON, RFC 2822 dates, `uri` fields, Page/PageSize
// paging with next_page_uri, form-encoded POST bodies (JSON bodies are accepted
// too), HTTP Basic auth with AccountSid:AuthToken or KeySid:KeySecret, and
// errors as {code, message, more_info, status}.
//
// An authenticated account sees itself and its subaccounts; any other sid is
// answered 404 so that accounts cannot be enumerated.
package api
