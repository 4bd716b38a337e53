package transport

// openFileLimit is 0, unknown: Windows sets no per-process limit on
// sockets and handles that would fit under the default cap.
func openFileLimit() int { return 0 }
