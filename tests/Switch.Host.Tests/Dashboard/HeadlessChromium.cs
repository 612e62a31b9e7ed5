using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Switch.Host.Tests.Dashboard;

/// <summary>
/// Debian's headless chromium driven over the DevTools protocol: one browser process, one page attached with a flat
/// session on the browser's WebSocket. Every wait is bounded; Dispose kills the browser and deletes its profile.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    private const int StartTimeoutMs = 60_000;
    private const int CommandTimeoutMs = 30_000;
    private const int MaxMessageBytes = 64 << 20; // a full-page screenshot fits
    private const string ListeningPrefix = "DevTools listening on ";

    private readonly Process _process;
    private readonly string _profileDirectory;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly ConcurrentQueue<string> _pageErrors = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _reader = Task.CompletedTask;
    private int _nextId;
    private string _sessionId = "";

    private HeadlessChromium(Process process, string profileDirectory)
    {
        _process = process;
        _profileDirectory = profileDirectory;
    }

    /// <summary>Console errors and uncaught exceptions of the page, for the test's failure message.</summary>
    public IReadOnlyCollection<string> PageErrors => _pageErrors;

    /// <summary>The chromium executable on PATH, or null.</summary>
    public static string? Find()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (string name in new[] { "chromium", "chromium-browser" })
            {
                string path = Path.Combine(dir, name);
                if (File.Exists(path)) return path;
            }
        }
        return null;
    }

    public static async Task<HeadlessChromium> LaunchAsync(string executable, int widthPx, int heightPx)
    {
        string profile = Path.Combine(Path.GetTempPath(), "switch-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            "--headless=new", "--remote-debugging-port=0", "--user-data-dir=" + profile, "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", "--mute-audio", $"--window-size={widthPx},{heightPx}", "about:blank",
        }) start.ArgumentList.Add(arg);

        var process = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start");
        var browser = new HeadlessChromium(process, profile);
        try
        {
            var endpoint = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            var stderr = new ConcurrentQueue<string>();
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) { endpoint.TrySetException(new InvalidOperationException("chromium exited:\n" + string.Join('\n', stderr))); return; }
                if (stderr.Count < 200) stderr.Enqueue(e.Data);
                int at = e.Data.IndexOf(ListeningPrefix, StringComparison.Ordinal);
                if (at >= 0) endpoint.TrySetResult(e.Data[(at + ListeningPrefix.Length)..].Trim());
            };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            string ws = await endpoint.Task.WaitAsync(TimeSpan.FromMilliseconds(StartTimeoutMs));

            using (var connect = new CancellationTokenSource(StartTimeoutMs))
                await browser._socket.ConnectAsync(new Uri(ws), connect.Token);
            browser._reader = Task.Run(browser.ReadLoopAsync);

            JsonElement created = await browser.BrowserCommandAsync("Target.createTarget", new JsonObject { ["url"] = "about:blank" });
            string targetId = created.GetProperty("targetId").GetString()!;
            JsonElement attached = await browser.BrowserCommandAsync("Target.attachToTarget", new JsonObject { ["targetId"] = targetId, ["flatten"] = true });
            browser._sessionId = attached.GetProperty("sessionId").GetString()!;
            await browser.CommandAsync("Page.enable");
            await browser.CommandAsync("Runtime.enable");
            await browser.CommandAsync("Emulation.setDeviceMetricsOverride", new JsonObject
            {
                ["width"] = widthPx, ["height"] = heightPx, ["deviceScaleFactor"] = 1, ["mobile"] = false,
            });
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    public Task NavigateAsync(string url) => CommandAsync("Page.navigate", new JsonObject { ["url"] = url });

    /// <summary>Evaluates an expression in the page (awaiting a promise) and returns its value; a thrown error fails the test.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        JsonElement result = await CommandAsync("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true,
        });
        if (result.TryGetProperty("exceptionDetails", out JsonElement error))
            throw new InvalidOperationException($"page script failed: {expression}\n{error}");
        JsonElement value = result.GetProperty("result");
        return value.TryGetProperty("value", out JsonElement v) ? v.Clone() : default;
    }

    /// <summary>Polls a boolean expression until true; the failure names the expression and the page's errors.</summary>
    public async Task WaitForAsync(string expression, string what, int timeoutMs = 45_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            JsonElement value = await EvaluateAsync(expression);
            if (value.ValueKind == JsonValueKind.True) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"waited {timeoutMs} ms for {what} ({expression}); page errors: {string.Join(" | ", _pageErrors)}");
            await Task.Delay(100);
        }
    }

    public async Task<string> EvaluateStringAsync(string expression) => (await EvaluateAsync(expression)).GetString() ?? "";

    public async Task<byte[]> ScreenshotPngAsync()
    {
        JsonElement shot = await CommandAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true });
        return Convert.FromBase64String(shot.GetProperty("data").GetString()!);
    }

    public Task<JsonElement> CommandAsync(string method, JsonObject? parameters = null) => SendAsync(method, parameters, _sessionId);

    private Task<JsonElement> BrowserCommandAsync(string method, JsonObject? parameters = null) => SendAsync(method, parameters, null);

    private async Task<JsonElement> SendAsync(string method, JsonObject? parameters, string? sessionId)
    {
        int id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        if (!string.IsNullOrEmpty(sessionId)) message["sessionId"] = sessionId;
        byte[] bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
        await _sendLock.WaitAsync();
        try
        {
            using var timeout = new CancellationTokenSource(CommandTimeoutMs);
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        }
        finally
        {
            _sendLock.Release();
        }
        try
        {
            return await reply.Task.WaitAsync(TimeSpan.FromMilliseconds(CommandTimeoutMs));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"chromium did not answer {method} within {CommandTimeoutMs} ms");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 16];
        using var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                message.SetLength(0);
                WebSocketReceiveResult received;
                do
                {
                    received = await _socket.ReceiveAsync(buffer, _stop.Token);
                    if (received.MessageType == WebSocketMessageType.Close) return;
                    message.Write(buffer, 0, received.Count);
                    if (message.Length > MaxMessageBytes) throw new InvalidOperationException("DevTools message too large");
                } while (!received.EndOfMessage);
                Dispatch(message.GetBuffer().AsMemory(0, (int)message.Length));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            foreach (var pending in _pending.Values) pending.TrySetException(new InvalidOperationException("the DevTools connection ended: " + e.Message));
        }
    }

    private void Dispatch(ReadOnlyMemory<byte> json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement root = doc.RootElement;
        if (root.TryGetProperty("id", out JsonElement idElement))
        {
            if (!_pending.TryGetValue(idElement.GetInt32(), out var reply)) return;
            if (root.TryGetProperty("error", out JsonElement error)) reply.TrySetException(new InvalidOperationException("DevTools error: " + error));
            else reply.TrySetResult(root.TryGetProperty("result", out JsonElement result) ? result.Clone() : default);
            return;
        }
        string method = root.TryGetProperty("method", out JsonElement m) ? m.GetString() ?? "" : "";
        if (_pageErrors.Count >= 100) return;
        if (method == "Runtime.exceptionThrown")
            _pageErrors.Enqueue("exception: " + root.GetProperty("params").GetProperty("exceptionDetails"));
        else if (method == "Runtime.consoleAPICalled" && root.GetProperty("params").GetProperty("type").GetString() == "error")
            _pageErrors.Enqueue("console.error: " + root.GetProperty("params").GetProperty("args"));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or stuck in the kernel: nothing more a test can do.
        }
        _socket.Dispose();
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { /* the reader ends with the socket */ }
        _process.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
        try { Directory.Delete(_profileDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
