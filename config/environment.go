package config

// A Variable is an environment variable filestage reads: a server flag's,
// or one its provider reads. The release's manifests (the MCP Registry's
// server.json, the Claude Desktop bundle, the Helm chart) declare these;
// their tests hold them to this list.
type Variable struct {
	Name, Help string
	// Secret marks a key, token or password: declared as secret wherever
	// a manifest can say so, and never given a default.
	Secret bool
	// Provider is the provider that reads it; empty for the server's own.
	Provider string
	// Required by its provider.
	Required bool
}

// secretFlags are the flags whose values are credentials.
var secretFlags = map[string]bool{
	"auth-token":                        true,
	"oauth-introspection-client-secret": true,
}

// providerVariables are what each provider reads (see each package's New).
var providerVariables = []Variable{
	{Name: "FILESTAGE_S3_BUCKET", Provider: "s3", Required: true, Help: "bucket to stage files in"},
	{Name: "FILESTAGE_S3_PREFIX", Provider: "s3", Help: "key prefix for staged files inside the bucket"},
	{Name: "FILESTAGE_S3_PATH_STYLE", Provider: "s3", Help: "true for path-style URLs (most S3-compatible servers other than AWS)"},
	{Name: "AWS_REGION", Provider: "s3", Help: "the bucket's region"},
	{Name: "AWS_DEFAULT_REGION", Provider: "s3", Help: "the bucket's region, when AWS_REGION is unset"},
	{Name: "AWS_ENDPOINT_URL_S3", Provider: "s3", Help: "URL of the S3-compatible storage, when it is not AWS"},
	{Name: "AWS_ENDPOINT_URL", Provider: "s3", Help: "URL of the S3-compatible storage, when AWS_ENDPOINT_URL_S3 is unset"},
	{Name: "AWS_ACCESS_KEY_ID", Provider: "s3", Help: "access key (else the AWS SDK's credential chain: profile, web identity, instance role)"},
	{Name: "AWS_SECRET_ACCESS_KEY", Provider: "s3", Secret: true, Help: "secret of AWS_ACCESS_KEY_ID"},
	{Name: "AWS_SESSION_TOKEN", Provider: "s3", Secret: true, Help: "session token of temporary credentials"},
	{Name: "AWS_PROFILE", Provider: "s3", Help: "profile of the shared AWS configuration files to use"},
	{Name: "COMPOSIO_API_KEY", Provider: "composio", Required: true, Secret: true, Help: "API key of your Composio project"},
	{Name: "COMPOSIO_BASE_URL", Provider: "composio", Help: "Composio API base URL (default the public API)"},
	{Name: "ALLOY_API_KEY", Provider: "alloy", Required: true, Secret: true, Help: "Alloy API key"},
	{Name: "ALLOY_BASE_URL", Provider: "alloy", Help: "Alloy API base URL (default the public API)"},
	{Name: "ALLOY_API_VERSION", Provider: "alloy", Help: "Alloy API version header (default the one filestage was built against)"},
	{Name: "RECOUP_API_KEY", Provider: "recoup", Required: true, Secret: true, Help: "Recoup API key"},
	{Name: "RECOUP_BASE_URL", Provider: "recoup", Help: "Recoup API base URL (default the public API)"},
	{Name: "QUANT_API_TOKEN", Provider: "quant", Required: true, Secret: true, Help: "Quant API token"},
	{Name: "QUANT_ORGANIZATION", Provider: "quant", Required: true, Help: "your Quant organization's ID"},
	{Name: "QUANT_BASE_URL", Provider: "quant", Help: "Quant API base URL (default the public API)"},
}

// Variables lists every environment variable filestage reads: the server
// flags' first, in --help's order, then the providers'.
func Variables() []Variable {
	var c Config
	var s string
	var vs []Variable
	for _, o := range options(&c, &s, &s, &s) {
		vs = append(vs, Variable{Name: o.env, Help: o.help, Secret: secretFlags[o.flag]})
	}
	return append(vs, providerVariables...)
}
