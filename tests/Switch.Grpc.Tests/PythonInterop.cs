using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Switch.Grpc.Tests;

/// <summary>
/// The second independent peer: grpc C-core through Debian's python3-grpcio (interop-python/peer.py). Message types
/// come from a FileDescriptorSet this fixture writes from the compiled descriptors, so the peer needs no generated code.
/// </summary>
public sealed class PythonInteropFixture : IAsyncLifetime
{
    private static readonly TimeSpan ScriptBound = TimeSpan.FromSeconds(90);
    private Process? _server;

    public string Directory { get; } = FindPeerDirectory();
    public string Descriptors { get; } = Path.Combine(Path.GetTempPath(), $"switch-interop-{Guid.NewGuid():N}.pb");

    /// <summary>The C-core server's address, "127.0.0.1:port".</summary>
    public string ServerTarget { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (PythonGrpc.Python is null)
        {
            // The tests are skipped (see PythonInteropFactAttribute), except under CI, where they must fail.
            if (PythonGrpc.UnderCi) throw new InvalidOperationException(PythonGrpc.Missing);
            return;
        }
        var set = new FileDescriptorSet();
        var seen = new HashSet<string>();
        void Add(FileDescriptor file)
        {
            if (!seen.Add(file.Name)) return;
            foreach (var dependency in file.Dependencies) Add(dependency); // dependencies first: the peer's pool needs them
            set.File.Add(FileDescriptorProto.Parser.ParseFrom(file.SerializedData));
        }
        Add(Interop.InteropReflection.Descriptor);
        Add(Health.V1.HealthReflection.Descriptor);
        Add(Reflection.V1.ReflectionReflection.Descriptor);
        await File.WriteAllBytesAsync(Descriptors, set.ToByteArray());

        _server = Start("server", Descriptors);
        string? first = await _server.StandardOutput.ReadLineAsync().WaitAsync(ScriptBound)
            ?? throw new InvalidOperationException("peer.py server exited before printing its port: " + await _server.StandardError.ReadToEndAsync());
        ServerTarget = $"127.0.0.1:{JsonDocument.Parse(first).RootElement.GetProperty("port").GetInt32()}";
    }

    /// <summary>Runs one client scenario and returns its JSON result (the last JSON line).</summary>
    public async Task<JsonElement> RunClientAsync(string target, string scenario, Func<JsonElement, Task>? onLine = null)
    {
        using var process = Start("client", Descriptors, target, scenario);
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        JsonElement last = default;
        var output = new List<string>();
        using var bound = new CancellationTokenSource(ScriptBound);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(bound.Token) is { } line)
            {
                output.Add(line);
                if (!line.TrimStart().StartsWith('{')) continue;
                last = JsonDocument.Parse(line).RootElement.Clone();
                if (onLine is not null && !last.TryGetProperty("scenario", out _)) await onLine(last);
            }
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"peer.py client {scenario} did not finish within {ScriptBound}:\n{string.Join('\n', output)}");
        }
        string all = string.Join('\n', output) + "\n" + await stderr;
        Assert.True(process.ExitCode == 0, $"peer.py client {scenario} exited {process.ExitCode}:\n{all}");
        Assert.False(last.TryGetProperty("error", out var error), $"peer.py client {scenario} crashed: {error}\n{all}");
        return last;
    }

    private Process Start(params string[] args)
    {
        var info = new ProcessStartInfo(PythonGrpc.Python!)
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-u");
        info.ArgumentList.Add(Path.Combine(Directory, "peer.py"));
        foreach (string a in args) info.ArgumentList.Add(a);
        return Process.Start(info) ?? throw new InvalidOperationException("Could not start peer.py.");
    }

    public Task DisposeAsync()
    {
        if (_server is { } server)
        {
            try
            {
                server.StandardInput.Close();
                if (!server.WaitForExit(5000)) server.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException) { /* Already gone. */ }
            server.Dispose();
        }
        try { File.Delete(Descriptors); } catch (IOException) { }
        return Task.CompletedTask;
    }

    private static string FindPeerDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "interop-python");
            if (File.Exists(Path.Combine(candidate, "peer.py"))) return candidate;
        }
        throw new DirectoryNotFoundException("tests/Switch.Grpc.Tests/interop-python not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Finds a python3 that imports grpc and google.protobuf (Debian's python3-grpcio, python3-protobuf).</summary>
public static class PythonGrpc
{
    public const string Missing = "python3-grpcio and python3-protobuf are not installed (apt-get install python3-grpcio python3-protobuf)";

    private static readonly Lazy<string?> Found = new(() =>
    {
        // The system interpreter first: a python3 earlier on PATH (pyenv, venv) usually lacks Debian's packages.
        foreach (string candidate in new[] { "/usr/bin/python3", "python3" })
        {
            try
            {
                using var probe = Process.Start(new ProcessStartInfo(candidate, "-c \"import grpc, google.protobuf\"")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                });
                if (probe is not null && probe.WaitForExit(30_000) && probe.ExitCode == 0) return candidate;
            }
            catch (System.ComponentModel.Win32Exception) { /* not there */ }
        }
        return null;
    });

    public static string? Python => Found.Value;

    /// <summary>CI set (as .ci/run does): a missing peer fails the tests instead of skipping them.</summary>
    public static bool UnderCi => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    /// <summary>Why the tests are skipped here, or null when they run.</summary>
    public static string? SkipReason => Python is null && !UnderCi ? Missing : null;
}

/// <summary>
/// A test against the C-core peer. Skipped when python3-grpcio is missing on a developer's machine; under CI
/// (CI set, as .ci/run does) it runs anyway and fails, so a CI image without the package cannot pass silently.
/// </summary>
public sealed class PythonInteropFactAttribute : FactAttribute
{
    public PythonInteropFactAttribute()
    {
        Skip = PythonGrpc.SkipReason;
    }
}
