// Package schema holds the tools' request and response bodies, mirroring the
// documented provider APIs field for field, and derives their JSON schemas.
package schema

import (
	"encoding/json"
	"time"

	"github.com/invopop/jsonschema"
)

// StageRequest mirrors Recoup's UploadConnectorFileRequest, plus two
// optional extras.
type StageRequest struct {
	URL         string `json:"url" jsonschema:"format=uri" jsonschema_description:"Where the file's bytes are. Required. An http(s) URL, fetched server-side; a file:///absolute/path URL, read from the server's disk below its allowed roots (none unless configured); or a data:<mediatype>;base64,<data> URL for small files (1 MiB by default)."`
	ToolSlug    string `json:"toolSlug" jsonschema:"pattern=^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$" jsonschema_description:"The action slug the file will be attached to, UPPERCASE_SNAKE_CASE (e.g. GMAIL_SEND_EMAIL, SLACK_UPLOAD_FILE). Required."`
	Filename    string `json:"filename,omitempty" jsonschema_description:"Name to store the file under. Default: from the response's Content-Disposition, else the URL path or file name, else generated with an extension that fits the content."`
	ToolkitSlug string `json:"toolkitSlug,omitempty" jsonschema:"pattern=^[a-z0-9][a-z0-9_-]*$" jsonschema_description:"The app the action belongs to (e.g. gmail). Default: the first segment of toolSlug, lower-cased."`
}

// Descriptor is a connector file_uploadable value.
type Descriptor struct {
	Name     string `json:"name" jsonschema_description:"Stored filename."`
	Mimetype string `json:"mimetype" jsonschema_description:"MIME type of the stored file."`
	S3Key    string `json:"s3key" jsonschema_description:"Connector storage key."`
}

// StageResponse mirrors Recoup's UploadConnectorFileResponse: the first four
// fields are exactly what goes into a file_uploadable argument.
type StageResponse struct {
	Success  bool   `json:"success"`
	Name     string `json:"name" jsonschema_description:"Stored filename."`
	Mimetype string `json:"mimetype" jsonschema_description:"MIME type detected from the bytes."`
	S3Key    string `json:"s3key" jsonschema_description:"Connector storage key. Pass it with name and mimetype in the action's file_uploadable argument."`
	Size     *int64 `json:"size,omitempty" jsonschema_description:"Size in bytes."`
	MD5      string `json:"md5,omitempty" jsonschema:"pattern=^[0-9a-f]{32}$" jsonschema_description:"MD5 of the bytes, lower-case hex."`
	Type     string `json:"type,omitempty" jsonschema:"enum=new,enum=existing,enum=update" jsonschema_description:"existing when storage already held these bytes and nothing was uploaded."`
	FileID   string `json:"file_id,omitempty" jsonschema_description:"The platform's own handle for the stored file, where it has one besides s3key (Quant's fileId); not part of the descriptor."`
	ReadBack
}

// ReadBack says how to read a stored file back, where the storage offers
// it (the local store and s3).
type ReadBack struct {
	DownloadURL          string     `json:"download_url,omitempty" jsonschema:"format=uri" jsonschema_description:"A signed URL that reads the stored file back (GET) until download_url_expires_at; anyone holding it can read the file."`
	DownloadURLExpiresAt *time.Time `json:"download_url_expires_at,omitempty" jsonschema_description:"When download_url stops working."`
	ExpiresAt            *time.Time `json:"expires_at,omitempty" jsonschema_description:"When the storage removes the file and the descriptor stops working; absent when it keeps files. Staging the same bytes again extends it."`
}

// UserUploadRequest asks the person for a file of their own.
type UserUploadRequest struct {
	ToolSlug    string `json:"toolSlug" jsonschema:"pattern=^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$" jsonschema_description:"The action slug the file will be attached to, UPPERCASE_SNAKE_CASE (e.g. GMAIL_SEND_EMAIL). Required."`
	ToolkitSlug string `json:"toolkitSlug,omitempty" jsonschema:"pattern=^[a-z0-9][a-z0-9_-]*$" jsonschema_description:"The app the action belongs to (e.g. gmail). Default: the first segment of toolSlug, lower-cased."`
	Filename    string `json:"filename,omitempty" jsonschema_description:"A name to suggest to the person, e.g. contract.pdf."`
	Mimetype    string `json:"mimetype,omitempty" jsonschema_description:"Types the page accepts: a type such as application/pdf, a family such as image/*, or several, comma-separated. Judged from the bytes. Default: any."`
	MaxBytes    *int64 `json:"max_bytes,omitempty" jsonschema:"minimum=1" jsonschema_description:"Largest file accepted, in bytes; at most the server's cap (the default)."`
	Message     string `json:"message,omitempty" jsonschema_description:"One line shown on the page: what you need and why, e.g. 'The signed contract, to attach to the email to Dana.'"`
}

// UserUploadStatusRequest asks where a user upload stands.
type UserUploadStatusRequest struct {
	UploadID    string `json:"upload_id" jsonschema_description:"upload_id from request_user_upload. Required."`
	WaitSeconds *int64 `json:"wait_seconds,omitempty" jsonschema:"minimum=0,maximum=600" jsonschema_description:"Wait up to this long for the file to be staged (default 0: answer at once). Progress is reported while waiting."`
}

// UserUploadResponse is where a user upload stands; once staged, it carries
// the descriptor.
type UserUploadResponse struct {
	Status               string     `json:"status" jsonschema:"enum=waiting_for_user,enum=receiving,enum=staged,enum=expired,enum=failed" jsonschema_description:"waiting_for_user: show upload_url to the person. receiving: the file is arriving. staged: name, mimetype and s3key are the descriptor. expired, failed: ask again."`
	UploadID             string     `json:"upload_id" jsonschema_description:"Pass it to get_user_upload."`
	UploadURL            string     `json:"upload_url,omitempty" jsonschema_description:"The page where the person sends the file; show it to them."`
	ExpiresAt            string     `json:"expires_at,omitempty" jsonschema:"format=date-time" jsonschema_description:"When the link stops working."`
	ReceivedBytes        *int64     `json:"received_bytes,omitempty" jsonschema_description:"Bytes received so far."`
	TotalBytes           *int64     `json:"total_bytes,omitempty" jsonschema_description:"The file's size, once the person started sending it."`
	Reason               string     `json:"reason,omitempty" jsonschema_description:"Why it failed."`
	Name                 string     `json:"name,omitempty" jsonschema_description:"Stored filename, once staged."`
	Mimetype             string     `json:"mimetype,omitempty" jsonschema_description:"MIME type detected from the bytes, once staged."`
	S3Key                string     `json:"s3key,omitempty" jsonschema_description:"Connector storage key, once staged. Pass it with name and mimetype in the action's file_uploadable argument."`
	Size                 *int64     `json:"size,omitempty" jsonschema_description:"Size in bytes, once staged."`
	MD5                  string     `json:"md5,omitempty" jsonschema:"pattern=^[0-9a-f]{32}$" jsonschema_description:"MD5 of the bytes, lower-case hex, once staged."`
	DownloadURL          string     `json:"download_url,omitempty" jsonschema:"format=uri" jsonschema_description:"Once staged, a signed URL that reads the file back (GET) until download_url_expires_at; where the storage offers one."`
	DownloadURLExpiresAt *time.Time `json:"download_url_expires_at,omitempty" jsonschema_description:"When download_url stops working."`
	FileExpiresAt        *time.Time `json:"file_expires_at,omitempty" jsonschema_description:"Once staged, when the storage removes the file; absent when it keeps files."`
	NextStep             string     `json:"next_step,omitempty" jsonschema_description:"What to do now."`
}

// PresignRequest mirrors Composio's POST /api/v3/files/upload/request body,
// plus the optional size.
type PresignRequest struct {
	ToolkitSlug string `json:"toolkit_slug" jsonschema:"pattern=^[a-z0-9][a-z0-9_-]*$" jsonschema_description:"Slug of the app the file belongs to, e.g. gmail, slack, github."`
	ToolSlug    string `json:"tool_slug" jsonschema:"pattern=^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$" jsonschema_description:"Slug of the action the file belongs to, e.g. GMAIL_SEND_EMAIL, SLACK_UPLOAD_FILE."`
	Filename    string `json:"filename" jsonschema_description:"Name of the original file, e.g. quarterly_report.pdf."`
	Mimetype    string `json:"mimetype" jsonschema_description:"MIME type of the original file, e.g. application/pdf, image/png."`
	MD5         string `json:"md5" jsonschema_description:"MD5 of the file: 32 hex characters, or base64 of the 16 digest bytes."`
	Size        *int64 `json:"size,omitempty" jsonschema:"minimum=0" jsonschema_description:"Size in bytes. When given, the upload must be exactly this long."`
}

// Metadata mirrors Composio's response metadata.
type Metadata struct {
	StorageBackend string `json:"storage_backend" jsonschema_description:"Storage backend behind the URL (local, s3, azure_blob_storage, ...)."`
}

// PresignResponse mirrors Composio's 200 body and adds what a client needs
// to upload without guessing.
type PresignResponse struct {
	ID                   string            `json:"id" jsonschema_description:"ID of the request file."`
	Key                  string            `json:"key" jsonschema_description:"Object storage location; the s3key of the descriptor."`
	NewPresignedURL      string            `json:"new_presigned_url" jsonschema_description:"Presigned URL to upload to; empty when type is existing (nothing to upload, and a stored object is never replaced)."`
	Type                 string            `json:"type" jsonschema:"enum=new,enum=existing,enum=update" jsonschema_description:"new: upload the bytes. existing: storage already holds these bytes under key; no upload is needed. update: the platform holds an older object under key and the upload replaces it (Composio only: filestage's own stores never replace an object)."`
	Metadata             Metadata          `json:"metadata"`
	Method               string            `json:"method" jsonschema_description:"HTTP method of the upload, e.g. PUT."`
	Headers              map[string]string `json:"headers" jsonschema_description:"Send exactly these headers with the upload; the storage refuses others."`
	ExpiresAt            *time.Time        `json:"expires_at,omitempty" jsonschema_description:"When the URL stops working; absent when there is no URL."`
	FileUploadable       Descriptor        `json:"file_uploadable" jsonschema_description:"The descriptor to put in the action's file_uploadable argument once uploaded."`
	Note                 string            `json:"note,omitempty" jsonschema_description:"What else to know about the URL, e.g. that it works only while this filestage process runs."`
	FileID               string            `json:"file_id,omitempty" jsonschema_description:"The platform's own handle for the file, where it has one besides key (Quant's fileId); not part of the descriptor."`
	DownloadURL          string            `json:"download_url,omitempty" jsonschema:"format=uri" jsonschema_description:"A signed URL that reads the file back (GET) once uploaded, until download_url_expires_at."`
	DownloadURLExpiresAt *time.Time        `json:"download_url_expires_at,omitempty" jsonschema_description:"When download_url stops working."`
	FileExpiresAt        *time.Time        `json:"file_expires_at,omitempty" jsonschema_description:"When the storage removes the file and file_uploadable stops working; absent when it keeps files."`
}

// ErrorBody mirrors Composio's error envelope.
type ErrorBody struct {
	Message      string   `json:"message"`
	Code         int      `json:"code"`
	Slug         string   `json:"slug"`
	Status       int      `json:"status"`
	RequestID    string   `json:"request_id,omitempty"`
	SuggestedFix string   `json:"suggested_fix,omitempty"`
	Errors       []string `json:"errors,omitempty"`
}

// ErrorEnvelope is the JSON text of every tool error.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// For returns the JSON schema of T, inlined, without $schema or $id: MCP
// reads tool schemas as JSON Schema 2020-12 objects.
func For[T any]() json.RawMessage {
	r := jsonschema.Reflector{DoNotReference: true, ExpandedStruct: true}
	s := r.Reflect(new(T))
	s.Version = ""
	s.ID = ""
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // the types above always marshal
	}
	return b
}

// StageManyFile is one file of a stage_connector_files call.
type StageManyFile struct {
	URL      string `json:"url" jsonschema:"format=uri" jsonschema_description:"Where the file's bytes are. Required. An http(s) URL, fetched server-side; a file:///absolute/path URL below the server's allowed roots; or a small data:<mediatype>;base64,<data> URL."`
	Filename string `json:"filename,omitempty" jsonschema_description:"Name to store the file under. Default: from the response's Content-Disposition, else the URL path or file name, else generated with an extension that fits the content."`
}

// StageManyRequest stages several files for one connector action.
type StageManyRequest struct {
	Files       []StageManyFile `json:"files" jsonschema:"minItems=1,maxItems=20" jsonschema_description:"The files to stage, 1 to 20, each {url, filename?}. Answers and errors refer to a file by its index here, from 0."`
	ToolSlug    string          `json:"toolSlug" jsonschema:"pattern=^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$" jsonschema_description:"The action slug the files will be attached to, UPPERCASE_SNAKE_CASE (e.g. GMAIL_SEND_EMAIL, SLACK_UPLOAD_FILE). Required."`
	ToolkitSlug string          `json:"toolkitSlug,omitempty" jsonschema:"pattern=^[a-z0-9][a-z0-9_-]*$" jsonschema_description:"The app the action belongs to (e.g. gmail). Default: the first segment of toolSlug, lower-cased."`
}

// StageManyResult is what became of one requested file.
type StageManyResult struct {
	Index    int    `json:"index" jsonschema_description:"The file's index in the request's files, from 0."`
	Status   string `json:"status" jsonschema:"enum=staged,enum=failed" jsonschema_description:"staged: name, mimetype and s3key are its descriptor, also in files. failed: no descriptor; errors says why."`
	Name     string `json:"name,omitempty" jsonschema_description:"Stored filename, when staged."`
	Mimetype string `json:"mimetype,omitempty" jsonschema_description:"MIME type detected from the bytes, when staged."`
	S3Key    string `json:"s3key,omitempty" jsonschema_description:"Connector storage key, when staged."`
	Size     *int64 `json:"size,omitempty" jsonschema_description:"Size in bytes, when staged."`
	MD5      string `json:"md5,omitempty" jsonschema:"pattern=^[0-9a-f]{32}$" jsonschema_description:"MD5 of the bytes, lower-case hex, when staged."`
	Type     string `json:"type,omitempty" jsonschema:"enum=new,enum=existing,enum=update" jsonschema_description:"existing when storage already held these bytes and nothing was uploaded."`
	FileID   string `json:"file_id,omitempty" jsonschema_description:"The platform's own ID of the stored file, where it has one besides s3key (Quant's fileId), when staged."`
	ReadBack
}

// StageManyError says why one requested file was not staged.
type StageManyError struct {
	Index        int    `json:"index" jsonschema_description:"The file's index in the request's files, from 0."`
	Slug         string `json:"slug" jsonschema_description:"What went wrong, as in stage_connector_file's errors: SOURCE_HTTP_ERROR, SOURCE_REFUSED, INVALID_ARGUMENT, BUSY, ..."`
	Message      string `json:"message" jsonschema_description:"What went wrong, naming the field (files[i].url); the URL itself is not repeated."`
	SuggestedFix string `json:"suggested_fix" jsonschema_description:"What to do about it."`
}

// StageManyResponse answers stage_connector_files: files is exactly the
// array a file_uploadable array argument takes.
type StageManyResponse struct {
	Success bool              `json:"success" jsonschema_description:"true when every file was staged."`
	Files   []Descriptor      `json:"files" jsonschema_description:"The descriptors {name, mimetype, s3key} of the files staged, in the request's order; failed files are left out. Pass this array as the action's file_uploadable array argument."`
	Results []StageManyResult `json:"results" jsonschema_description:"One entry per requested file, in the request's order: staged (with its descriptor, size, md5, type) or failed."`
	Errors  []StageManyError  `json:"errors,omitempty" jsonschema_description:"Why each failed file failed, by index; absent when every file was staged."`
}
