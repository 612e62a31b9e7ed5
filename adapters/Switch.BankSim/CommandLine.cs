using System.Globalization;

namespace Switch.BankSim;

/// <summary>The stand-alone simulator's arguments, parsed by hand: "--name value" or "--name=value".</summary>
public static class CommandLine
{
    public const string Usage = """
        Switch.BankSim: a simulated bank endpoint (switch.v1.BankEndpoint over gRPC, cleartext HTTP/2 on 127.0.0.1).

        Usage: Switch.BankSim [options]

        Options:
          --port N                     TCP port on 127.0.0.1; 0 picks a free one (default 0).
          --latency MODEL              Time to execute each request: 0, fixed:MS, uniform:MIN-MAX,
                                       lognormal:MEDIAN,SIGMA (milliseconds; default 0).
          --failure-rate R             Share of debits/credits declined with INSUFFICIENT_FUNDS, LIMIT_EXCEEDED
                                       or ACCOUNT_CLOSED, not executed; 0..1 (default 0).
          --no-answer-rate R           Share of debits/credits executed but never answered, so the switch times
                                       out and must query; 0..1 (default 0).
          --system-error-rate R        Share of new debits/credits answered FAILED/SYSTEM_ERROR at once, not
                                       executed: the endpoint failing, not a decline; 0..1 (default 0).
          --capacity-tps N             Requests per second at normal latency; 0 = unlimited (default). Up to 2x
                                       the bank adds queueing delay; past 2x it answers FAILED/BANK_BUSY.
          --max-queueing-delay-ms N    Queueing delay added at 2x capacity (default 200).
          --seed N                     Seed of the random source (default 1).
          --bank-codes C1,C2,...       Bank codes served; informational (default none).
          --max-pending-per-stream N   Answers held per Exchange stream before reading pauses (default 65536).
          --batch-max N                Requests and answers per Exchange message (default 8190; 1: single messages only).
          -h, --help                   Show this help.

        Prints "Switch.BankSim listening on <address>" once ready; Ctrl-C or SIGTERM stops it.
        """;

    /// <summary>The outcome of parsing: options to run with, help to print, or an error naming the option.</summary>
    public sealed record Result(BankSimulatorOptions? Options, bool Help, string? Error);

    public static Result Parse(IReadOnlyList<string> args)
    {
        var options = new BankSimulatorOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "-h" or "--help" or "-?") return new Result(null, true, null);
            if (!arg.StartsWith("--", StringComparison.Ordinal)) return Error($"unexpected argument '{arg}' (options start with --; see --help).");
            string name = arg;
            string? value = null;
            int equals = arg.IndexOf('=');
            if (equals > 0)
            {
                name = arg[..equals];
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            if (value is null) return Error($"{name}: a value is required.");

            string? error = null;
            switch (name)
            {
                case "--port": options = options with { Port = Int(name, value, ref error) }; break;
                case "--latency":
                    if (LatencyModel.TryParse(value, out var latency, out string? latencyError)) options = options with { Latency = latency };
                    else error = "--" + latencyError;
                    break;
                case "--failure-rate": options = options with { FailureRate = Rate(name, value, ref error) }; break;
                case "--no-answer-rate": options = options with { NoAnswerRate = Rate(name, value, ref error) }; break;
                case "--system-error-rate": options = options with { SystemErrorRate = Rate(name, value, ref error) }; break;
                case "--capacity-tps": options = options with { CapacityTps = Int(name, value, ref error) }; break;
                case "--max-queueing-delay-ms": options = options with { MaxQueueingDelayMs = Int(name, value, ref error) }; break;
                case "--seed": options = options with { Seed = Int(name, value, ref error) }; break;
                case "--max-pending-per-stream": options = options with { MaxPendingPerStream = Int(name, value, ref error) }; break;
                case "--batch-max": options = options with { BatchMax = Int(name, value, ref error) }; break;
                case "--bank-codes":
                    var codes = new List<int>();
                    foreach (string part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                        codes.Add(Int(name, part, ref error));
                    options = options with { BankCodes = codes };
                    break;
                default:
                    return Error($"unknown option '{name}' (see --help).");
            }
            if (error is not null) return Error(error);
        }

        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            // Name the option as typed, not the property: FailureRate -> --failure-rate.
            return Error($"{OptionName(e.ParamName)}: {e.Message}");
        }
        return new Result(options, false, null);
    }

    private static Result Error(string message) => new(null, false, message);

    private static int Int(string name, string value, ref string? error)
    {
        if (int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int result)) return result;
        error ??= $"{name}: expected an integer, got '{value}'.";
        return 0;
    }

    private static double Rate(string name, string value, ref string? error)
    {
        if (double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double result)
            && result is >= 0 and <= 1) return result;
        error ??= $"{name}: expected a number between 0 and 1, got '{value}'.";
        return 0;
    }

    /// <summary>PascalCase property to its kebab-case option: "CapacityTps" -> "--capacity-tps".</summary>
    internal static string OptionName(string? property)
    {
        if (string.IsNullOrEmpty(property)) return "options";
        var text = new System.Text.StringBuilder("--");
        for (int i = 0; i < property.Length; i++)
        {
            char c = property[i];
            if (char.IsUpper(c) && i > 0) text.Append('-');
            text.Append(char.ToLowerInvariant(c));
        }
        return text.ToString();
    }
}
