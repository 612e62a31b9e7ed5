using System.Diagnostics;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.LoadGen;

/// <summary>
/// What a failed call says about the switch-over, if anything: a standby's refusal (UNAVAILABLE "NOT_PRIMARY: ...",
/// the primary named in x-switch-primary when known; nothing was taken), or a switch that did not answer (UNAVAILABLE
/// with no reject code of the switch's: connection refused or lost, a switch recovering its journal; the request's
/// fate is unknown). A business refusal that happens to be UNAVAILABLE (BANK_UNAVAILABLE) is none of these.
/// </summary>
public sealed record FailoverSignal(bool NotPrimary, Uri? Primary)
{
    public const string NotPrimaryCode = "NOT_PRIMARY";
    public const string PrimaryTrailer = "x-switch-primary";

    public static FailoverSignal? Of(RpcException e)
    {
        if (e.StatusCode != StatusCode.Unavailable)
        {
            // A stream reset or a protocol error as the node went away (INTERNAL or CANCELLED from the transport).
            return e.StatusCode is StatusCode.Internal or StatusCode.Cancelled && FromTransport(e) ? new FailoverSignal(false, null) : null;
        }
        string? code = ResultRecorder.RejectCodeOf(e.Status);
        if (code == NotPrimaryCode) return new FailoverSignal(true, ParseAddress(e.Trailers.GetValue(PrimaryTrailer)));
        return code is null or "UNAVAILABLE" or "ENGINE_STOPPED" ? new FailoverSignal(false, null) : null;
    }

    private static bool FromTransport(Exception e)
    {
        for (Exception? x = e.InnerException; x is not null; x = x.InnerException)
        {
            if (x is IOException or HttpRequestException) return true;
        }
        return false;
    }

    /// <summary>An http(s) address as a standby names it, or null (absent or not an address: then the next one is tried).</summary>
    public static Uri? ParseAddress(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps) ? uri : null;
}

/// <summary>One choice of address: the channels to it, numbered so that many calls failing at once move only once.</summary>
public sealed record TargetGeneration(int Number, Uri Address, GrpcChannel[] Channels)
{
    public GrpcChannel For(int lane) => Channels[lane % Channels.Length];
}

/// <summary>
/// The addresses of one switch (a primary and its standbys) and the one in use. A call that fails with a
/// <see cref="FailoverSignal"/> moves it: to the primary a standby named, else to the next address. Each address has
/// one set of channels for the run, opened at the first move to it and used again at every later one: calls may still
/// be on an earlier address's channels, and a run that goes round a standby and a dead primary many times (the standby
/// slow to take office) would otherwise open a set at each visit, past the switch's connections per institution
/// (CONNECTION_LIMIT). A channel whose connection died connects again at its next call.
/// </summary>
public sealed class Targets : IDisposable
{
    /// <summary>Addresses known at most (those given, and primaries named that were not among them).</summary>
    public const int MaxAddresses = 16;
    /// <summary>After a move to an address nobody named, calls wait this long first: a switch-over takes a while, and a
    /// tight loop over dead or standby nodes would only burn the cores it shares with the switch.</summary>
    public const int UnnamedRetryMs = 25;

    private readonly object _lock = new();
    private readonly List<Uri> _addresses;
    private readonly int _channelsPerTarget;
    /// <summary>Each address's channels (at most <see cref="MaxAddresses"/> sets).</summary>
    private readonly Dictionary<Uri, GrpcChannel[]> _channels = new();
    private volatile TargetGeneration _current;
    private long _notBeforeTicks;

    public Targets(IReadOnlyList<Uri> addresses, int channelsPerTarget)
    {
        if (addresses.Count is 0 or > MaxAddresses) throw new ArgumentException($"targets: 1 to {MaxAddresses} addresses, got {addresses.Count}");
        _addresses = addresses.ToList();
        _channelsPerTarget = channelsPerTarget;
        _current = new TargetGeneration(0, _addresses[0], Open(_addresses[0]));
    }

    /// <summary>More than one address was given: failed calls follow the primary (with one, they fail as they did).</summary>
    public bool Follows => _addresses.Count > 1;

    public TargetGeneration Current => _current;

    /// <summary>Moves made (to another address or round to the first again).</summary>
    public int Moves { get; private set; }

    /// <summary>The address in use, after the pause a move to an unnamed address asks for.</summary>
    public async ValueTask<TargetGeneration> ReadyAsync(CancellationToken cancel)
    {
        long waitTicks = Volatile.Read(ref _notBeforeTicks) - Stopwatch.GetTimestamp();
        if (waitTicks > 0) await Task.Delay(Stopwatch.GetElapsedTime(0, waitTicks), cancel);
        return _current;
    }

    /// <summary>
    /// A call on <paramref name="seen"/> failed with <paramref name="signal"/>: moves to the named primary, or to the next
    /// address; nothing when another call moved already. Returns the generation to use now.
    /// </summary>
    public TargetGeneration Failed(TargetGeneration seen, FailoverSignal signal)
    {
        lock (_lock)
        {
            if (_current.Number != seen.Number) return _current;
            Uri next;
            if (signal.Primary is { } named && !named.Equals(seen.Address))
            {
                if (!_addresses.Contains(named) && _addresses.Count < MaxAddresses) _addresses.Add(named);
                next = named;
            }
            else
            {
                next = _addresses[(Math.Max(0, _addresses.IndexOf(seen.Address)) + 1) % _addresses.Count];
                Volatile.Write(ref _notBeforeTicks, Stopwatch.GetTimestamp() + UnnamedRetryMs * Stopwatch.Frequency / 1000);
            }
            Moves++;
            _current = new TargetGeneration(seen.Number + 1, next, Open(next));
            return _current;
        }
    }

    /// <summary>
    /// A payment succeeded on <paramref name="seen"/>, an address chosen after the switch-over began, while the target had
    /// moved on past it: back to it, as a new generation. Its node is in office; the move away was a failure it gave just
    /// before it took office (a call begun then and answered NOT_PRIMARY after), and the address moved to next may be a
    /// standby, whose refusals would then begin a second switch-over that never was (seen in CI: two counted for one
    /// election). The caller checks that the success ends the switch-over (<see cref="FailoverLog.Ends"/>), so an answer
    /// still coming from a dead primary never brings the target back to it.
    /// </summary>
    public TargetGeneration Answered(TargetGeneration seen)
    {
        lock (_lock)
        {
            if (_current.Number <= seen.Number || _current.Address.Equals(seen.Address)) return _current;
            Moves++;
            _current = new TargetGeneration(_current.Number + 1, seen.Address, Open(seen.Address));
            return _current;
        }
    }

    /// <summary>The address's channels: its set from an earlier visit, else a new one.</summary>
    private GrpcChannel[] Open(Uri address)
    {
        if (_channels.TryGetValue(address, out GrpcChannel[]? open)) return open;
        System.Diagnostics.Debug.Assert(_channels.Count < MaxAddresses, "targets: a channel set per known address at most");
        var channels = Enumerable.Range(0, _channelsPerTarget).Select(_ => GrpcChannel.ForAddress(address)).ToArray();
        _channels.Add(address, channels);
        return channels;
    }

    /// <summary>Channels opened over the run (every address's set).</summary>
    public int ChannelsOpened
    {
        get
        {
            lock (_lock) return _channels.Values.Sum(set => set.Length);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (GrpcChannel c in _channels.Values.SelectMany(set => set)) c.Dispose();
        }
    }
}

/// <summary>
/// The switch-overs a run went through: each from the first call that found no primary to the first payment that
/// succeeded on an address chosen after it, timed from the last success before it (the time with no successful
/// answer, the service's outage as the institutions see it).
/// </summary>
public sealed class FailoverLog
{
    public const int MaxKept = 10_000;

    private readonly object _lock = new();
    private readonly List<double> _gapsMs = new();
    /// <summary>What began each switch-over (the call and its status), in order: a run that counted one more than it
    /// should says which failure it took for news.</summary>
    private readonly List<string> _causes = new();
    private volatile bool _open;
    private long _openedTicks;
    // The latest success's generation and time, kept to within a millisecond (a shared write per success otherwise).
    private int _lastSuccessGeneration = -1;
    private long _lastSuccessTicks;
    private int _sinceGeneration;
    private int _count;

    /// <summary>A call found no primary: a switch-over begins unless one is under way. <paramref name="lastSuccessTicks"/>
    /// is read only then (0 when nothing succeeded yet: the gap is then timed from now).</summary>
    public void Began(TargetGeneration current, Func<long> lastSuccessTicks, string call, RpcException error)
    {
        if (_open) return;
        lock (_lock)
        {
            if (_open) return;
            long last = lastSuccessTicks();
            _openedTicks = last > 0 ? last : Stopwatch.GetTimestamp();
            _sinceGeneration = current.Number + 1;
            _count++;
            if (_causes.Count < MaxKept) _causes.Add($"{call} on {current.Address} (address choice {current.Number}): {error.StatusCode} {error.Status.Detail}");
            _open = true;
        }
    }

    /// <summary>Whether a success on <paramref name="generation"/> ends the switch-over under way (false when none is: one
    /// volatile read).</summary>
    public bool Ends(int generation) => _open && generation >= Volatile.Read(ref _sinceGeneration);

    /// <summary>A payment succeeded on <paramref name="generation"/>: ends the switch-over when it was on an address chosen
    /// after it began (an answer still coming from the old primary does not). One volatile read when none is under way.</summary>
    public void Succeeded(int generation, long nowTicks)
    {
        int last = Volatile.Read(ref _lastSuccessGeneration);
        if (generation > last || (generation == last && nowTicks - Volatile.Read(ref _lastSuccessTicks) >= Stopwatch.Frequency / 1000))
        {
            Volatile.Write(ref _lastSuccessTicks, nowTicks);
            if (generation > last) Volatile.Write(ref _lastSuccessGeneration, generation);
        }
        if (!_open) return;
        lock (_lock)
        {
            if (!_open || generation < _sinceGeneration) return;
            if (_gapsMs.Count < MaxKept) _gapsMs.Add(Math.Round(Stopwatch.GetElapsedTime(_openedTicks, nowTicks).TotalMilliseconds, 1));
            _open = false;
        }
    }

    /// <summary>A call on <paramref name="generation"/> that began at <paramref name="startedTicks"/> was overtaken: something
    /// succeeded there (or on a later address) more than a millisecond after it began.</summary>
    public bool SucceededSince(int generation, long startedTicks) =>
        Volatile.Read(ref _lastSuccessGeneration) >= generation && Volatile.Read(ref _lastSuccessTicks) - startedTicks > Stopwatch.Frequency / 1000;

    /// <summary>Switch-overs begun (an unfinished one included), each finished one's time with no success, and what began
    /// each, in order.</summary>
    public (int Count, double[] GapsMs, string[] Causes) Snapshot()
    {
        lock (_lock) return (_count, _gapsMs.ToArray(), _causes.ToArray());
    }
}
