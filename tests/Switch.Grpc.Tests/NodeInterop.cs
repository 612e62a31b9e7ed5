using System.Diagnostics;
using System.Text.Json;

namespace Switch.Grpc.Tests;

/// <summary>
/// The independent peer: Node scripts on @grpc/grpc-js in interop/. Installs their dependencies once
/// (npm ci from the committed lock), starts interop/server.js, and runs interop/client.js per scenario. The host
/// tests link this file and run interop/institution.js against the real switch (without the server).
/// </summary>
public sealed class NodeInteropFixture : IAsyncLifetime
{
    private static readonly TimeSpan InstallBound = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan ScriptBound = TimeSpan.FromSeconds(60);
    private Process? _server;

    public string Directory { get; } = FindInteropDirectory();

    /// <summary>The grpc-js server's address, "127.0.0.1:port".</summary>
    public string ServerTarget { get; private set; } = "";

    public async Task InitializeAsync()
    {
        await InstallAsync();
        _server = Start("node", "server.js");
        string? first = await _server.StandardOutput.ReadLineAsync().WaitAsync(ScriptBound)
            ?? throw new InvalidOperationException("server.js exited before printing its port: " + await _server.StandardError.ReadToEndAsync());
        int port = JsonDocument.Parse(first).RootElement.GetProperty("port").GetInt32();
        ServerTarget = $"127.0.0.1:{port}";
    }

    /// <summary>Installs the scripts' dependencies (npm ci from the committed lock) unless they are there.</summary>
    public async Task InstallAsync()
    {
        if (!System.IO.Directory.Exists(Path.Combine(Directory, "node_modules", "@grpc", "grpc-js")))
        {
            string args = File.Exists(Path.Combine(Directory, "package-lock.json")) ? "ci --no-audit --no-fund" : "install --no-audit --no-fund";
            var (code, output) = await RunAsync("npm", args, InstallBound);
            if (code != 0) throw new InvalidOperationException($"npm {args} failed ({code}):\n{output}");
        }
    }

    /// <summary>Runs client.js against a target and returns its single JSON result line.</summary>
    public Task<JsonElement> RunClientAsync(string target, string scenario) => RunScriptAsync("client.js", $"{target} {scenario}");

    /// <summary>Runs one of the interop scripts and returns its single JSON result line.</summary>
    public async Task<JsonElement> RunScriptAsync(string script, string args)
    {
        var (code, output) = await RunAsync("node", $"{script} {args}", ScriptBound);
        Assert.True(code == 0, $"{script} {args} exited {code}:\n{output}");
        string line = output.Split('\n').Select(l => l.Trim()).Last(l => l.StartsWith('{'));
        var result = JsonDocument.Parse(line).RootElement.Clone();
        Assert.False(result.TryGetProperty("error", out var error), $"{script} {args} crashed: {error}");
        return result;
    }

    private Process Start(string file, string args)
    {
        var info = new ProcessStartInfo(file, args)
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        return Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
    }

    private async Task<(int Code, string Output)> RunAsync(string file, string args, TimeSpan bound)
    {
        using var process = Start(file, args);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(bound);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {args} did not finish within {bound}.");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    public Task DisposeAsync()
    {
        if (_server is { } server)
        {
            try
            {
                if (!server.HasExited) server.Kill(entireProcessTree: true);
                server.WaitForExit(5000);
            }
            catch (InvalidOperationException) { /* Already gone. */ }
            server.Dispose();
        }
        return Task.CompletedTask;
    }

    private static string FindInteropDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            // From this project's output, or (linked into another test project) from the tests folder beside it.
            foreach (string candidate in new[] { Path.Combine(dir.FullName, "interop"), Path.Combine(dir.FullName, "Switch.Grpc.Tests", "interop") })
            {
                if (File.Exists(Path.Combine(candidate, "package.json")) && File.Exists(Path.Combine(candidate, "interop.proto")))
                    return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/Switch.Grpc.Tests/interop not found above " + AppContext.BaseDirectory);
    }
}
