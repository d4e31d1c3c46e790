package serve_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/serve"
)

// chromium returns the path of a Chromium or Chrome, skipping the test
// when there is none, unless CI is "true": then it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "no chromium (nor chrome) on PATH: the try-it page's browser test needs one; install it with: apt-get install -y --no-install-recommends chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run installs it when running as root)")
	}
	t.Skip(msg)
	return ""
}

// TestTryItPageInBrowser opens the try-it page in a headless Chromium,
// fills the form, clicks Predict and reads the prediction from the page;
// then the errors: one the page finds itself, one the server answers.
func TestTryItPageInBrowser(t *testing.T) {
	path := chromium(t)
	srv, err := serve.NewServer(housePredictor(), writeModel(t, testWeights), nil)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	defer func() {
		stop()
		assert.NoError(t, <-served)
	}()
	url := "http://" + l.Addr().String() + "/"
	for code := 0; code != 200; {
		code, _ = do(t, "GET", url+"v2/health/ready", "")
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// A bound for the whole browser session, so that a hung browser fails
	// the test instead of hanging it; not a measure of speed.
	bctx, cancelTimeout := context.WithTimeout(bctx, 3*time.Minute)
	defer cancelTimeout()

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#predict")),
	))
	title, err := chromedp.Run(bctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "Try model house", title)

	// Every control has a label: what a screen reader announces.
	unlabelled, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('input, textarea, select'))
		.filter(el => !el.labels || el.labels.length === 0 || el.labels[0].textContent.trim() === '')
		.map(el => el.id)`))
	require.NoError(t, err)
	assert.Empty(t, unlabelled)

	// The form starts with the predictor's example; set other values.
	rooms, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS("#f0-rooms")))
	require.NoError(t, err)
	assert.Equal(t, "3", rooms)
	predict := func(fill ...chromedp.Action[chromedp.Void]) (result, errText string) {
		t.Helper()
		require.NoError(t, chromedp.Do(bctx, fill...))
		// Clear the last outcome, so that the poll below waits for this one.
		_, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById('result').textContent = ''; document.getElementById('error').textContent = ''; true`))
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#predict"))))
		_, err = chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById('result').textContent !== '' || document.getElementById('error').textContent !== ''`))
		require.NoError(t, err)
		result, err = chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS("#result")))
		require.NoError(t, err)
		errText, err = chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS("#error")))
		require.NoError(t, err)
		return result, errText
	}
	// typeInto empties the control id (as select-all and delete would)
	// and types text into it.
	typeInto := func(id, text string) []chromedp.Action[chromedp.Void] {
		empty := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector('`+id+`').value = '', true`)(ctx, tg)
			return err
		})
		return []chromedp.Action[chromedp.Void]{empty, chromedp.SendKeys(chromedp.CSS(id), text)}
	}

	var fill []chromedp.Action[chromedp.Void]
	fill = append(fill, typeInto("#f0-rooms", "4")...)
	fill = append(fill, typeInto("#f1-area", "80.5")...)
	fill = append(fill, typeInto("#f4-extra", "1, 2.5")...)
	fill = append(fill, chromedp.Click(chromedp.CSS("#f2-garden")))
	result, errText := predict(fill...)
	assert.Empty(t, errText)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(result), &got), result)
	// 4·10 + 80.5·2 + 5 + 1 + 2.5
	assert.Equal(t, map[string]any{"price": 209.5, "band": "high"}, got)

	// An error the page finds before sending: not a whole number.
	result, errText = predict(typeInto("#f0-rooms", "2.5")...)
	assert.Empty(t, result)
	assert.Equal(t, "rooms: give a whole number, not 2.5", errText)
	invalid, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("#f0-rooms"), "aria-invalid"))
	require.NoError(t, err)
	assert.Equal(t, "true", invalid.Value)

	// An error the server answers: Pre refuses a negative area.
	fill = append(typeInto("#f0-rooms", "2"), typeInto("#f1-area", "-1")...)
	result, errText = predict(fill...)
	assert.Empty(t, result)
	assert.Equal(t, "input area: must be ≥ 0", errText)
}
