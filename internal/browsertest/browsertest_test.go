package browsertest

import (
	"testing"

	"github.com/chromedp/chromedp"
)

func TestStart(t *testing.T) {
	ctx := Start(t)
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string]("navigator.userAgent"))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(title)
}
