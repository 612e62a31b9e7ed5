using System.CommandLine;
using System.CommandLine.Help;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.Operator;

/// <summary>
/// switchctl: the operator CLI. <see cref="RunAsync"/> is the whole program (args in, text out, exit code back) so
/// tests run it in-process against a real switch.
/// </summary>
public static class SwitchCtl
{
    public const string AdminUrlVariable = "SWITCH_ADMIN_URL";
    public const string KeyVariable = "SWITCH_OPERATOR_KEY";
    public const string CaCertVariable = "SWITCH_ADMIN_CA_CERT";
    /// <summary>SubmitRecords takes the file in chunks of at most 1 MiB, in order.</summary>
    public const int RecordsChunkBytes = 1 << 20;
    private const int MaxListLimit = 1_000;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, Func<string, string?> environment, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        var cli = new Cli(stdout, stderr, environment);
        ParseResult parse = cli.Root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            foreach (var error in parse.Errors) stderr.WriteLine("switchctl: usage: " + error.Message);
            stderr.WriteLine("Run 'switchctl --help' (or 'switchctl COMMAND --help') for usage and examples.");
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration
        {
            Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null,
        }, cancellationToken).ConfigureAwait(false);
    }

    private sealed class Cli
    {
        private readonly TextWriter _out;
        private readonly TextWriter _err;
        private readonly Func<string, string?> _environment;
        private readonly Option<string> _admin = new("--admin")
        {
            Description = $"The switch's admin gRPC address, or its nodes' comma-separated (the primary is found and followed) [env {AdminUrlVariable}; default {AdminSession.DefaultAdminUrl}]",
            HelpName = "URL", Recursive = true,
        };
        private readonly Option<string> _key = new("--key")
        {
            Description = $"Your operator key, sent in the {AdminMethods.OperatorKeyHeader} header [env {KeyVariable}]",
            HelpName = "KEY", Recursive = true,
        };
        private readonly Option<string> _caCert = new("--ca-cert")
        {
            Description = $"For an https:// admin address: PEM file of the authorities that issued the switch's certificate (or that certificate itself) to trust instead of the system's [env {CaCertVariable}]",
            HelpName = "FILE", Recursive = true,
        };
        private readonly Option<bool> _json = new("--json")
        {
            Description = "Print the switch's replies as proto JSON (one object per line for streams), for scripts",
            Recursive = true,
        };

        public Cli(TextWriter stdout, TextWriter stderr, Func<string, string?> environment)
        {
            _out = stdout;
            _err = stderr;
            _environment = environment;
            Root = new RootCommand(
                "switchctl: operate the switch — cut-over weights and ramps, endpoint states, live figures, alerts, the audit log, clearing.\n" +
                "Every change needs a --reason and is recorded in the audit log under your operator identity.\n\n" +
                "Exit codes: 0 ok; 1 refused by the switch; 2 usage error (nothing sent); 3 switch unreachable (or deadline);\n" +
                "4 not allowed (UNAUTHENTICATED or PERMISSION_DENIED).\n\n" +
                "Example: SWITCH_OPERATOR_KEY=demo-operator-key switchctl banks")
            {
                _admin, _key, _caCert, _json,
                WhoAmI(), Banks(), Weights(), Ramp(),
                EndpointState("drain", EndpointAdminState.Draining, "Drains an endpoint: no new traffic, work in flight completes; its share goes to the bank's other endpoints"),
                EndpointState("down", EndpointAdminState.Down, "Takes an endpoint down: no new traffic; its share goes to the bank's other endpoints"),
                EndpointState("up", EndpointAdminState.Up, "Brings an endpoint back up: it takes its weighted share again"),
                Audit(), Stats(), Alerts(), Batch(), Settlement(), Breaks(), Report(), Explain(), Snapshot(), Cluster(),
            };
        }

        public RootCommand Root { get; }

        private Command WhoAmI()
        {
            var command = new Command("whoami", "Shows who your key belongs to and its role (read or operate).\nExample: switchctl whoami");
            command.SetAction(Run(async (parse, admin) =>
            {
                OperatorInfo me = await admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest());
                if (Json(parse, me)) return;
                string scope = me.ScopeBank.Length > 0 ? $"; scoped to bank {me.ScopeBank}" : me.ScopeInstitution.Length > 0 ? $"; scoped to institution {me.ScopeInstitution}" : "";
                _out.WriteLine($"{me.OperatorId} ({(me.Role == OperatorRole.Operate ? "operate: may look and change" : "read: may look, not change")}{scope})");
            }));
            return command;
        }

        private Command Banks()
        {
            var bank = OptionalBank("Only this bank (3-digit code)");
            var command = new Command("banks",
                "Lists banks and their endpoints: weight, state, reachability, breaker, in-flight, and the last 10 s (req/s, success %, timeout %, p50/p99 ms); a running ramp.\n" +
                "Example: switchctl banks 102") { bank };
            command.SetAction(Run(async (parse, admin) =>
            {
                var request = new ListBanksRequest { Bank = BankOrEmpty(parse.GetValue(bank)) };
                ListBanksReply reply = await admin.UnaryAsync(AdminMethods.ListBanks, request);
                if (Json(parse, reply)) return;
                Render.Banks(_out, reply);
            }));
            return command;
        }

        private Command Weights()
        {
            var bank = new Argument<string>("BANK") { Description = "The bank (3-digit code)" };
            var weights = WeightsArgument();
            var reason = Reason();
            var command = new Command("weights",
                "Sets a bank's endpoint weights at once (basis points summing to 10000, or percentages summing to 100%); cancels a running ramp.\n" +
                "Example: switchctl weights 102 a=9500 b=500 --reason \"new front-end takes 5%\"\n" +
                "Example: switchctl weights 102 a=0% b=100% --reason \"DR drill\"") { bank, weights, reason };
            command.SetAction(Run(async (parse, admin) =>
            {
                SetWeightsRequest request = WeightsRequest(parse, bank, weights, reason);
                CommandReply reply = await admin.UnaryAsync(AdminMethods.SetWeights, request);
                if (Json(parse, reply)) return;
                Render.Changed(_out, $"weights of bank {request.Bank}", reply);
            }));
            return command;
        }

        private Command Ramp()
        {
            var bank = new Argument<string>("BANK") { Description = "The bank (3-digit code)" };
            var weights = WeightsArgument();
            var reason = Reason();
            var steps = new Option<int>("--steps") { Description = $"Equal steps to the target (1..{OperatorArgs.MaxRampSteps})", Required = true, HelpName = "N" };
            var over = new Option<string>("--over") { Description = "The time the steps take (e.g. 90s, 10m, 1h30m; at most 24h)", Required = true, HelpName = "DURATION" };
            var command = new Command("ramp",
                "Moves a bank's weights to a target in N equal steps over a duration; a new change cancels it.\n" +
                "Example: switchctl ramp 102 a=5000 b=5000 --steps 5 --over 10m --reason \"front-end proved itself\"") { bank, weights, steps, over, reason };
            command.SetAction(Run(async (parse, admin) =>
            {
                SetWeightsRequest request = WeightsRequest(parse, bank, weights, reason);
                int n = parse.GetValue(steps);
                if (n < 1 || n > OperatorArgs.MaxRampSteps) throw new UsageException($"--steps: {n} is outside 1..{OperatorArgs.MaxRampSteps}");
                request.RampSteps = n;
                request.RampDurationMs = OperatorArgs.DurationMs(parse.GetValue(over) ?? "", "--over");
                CommandReply reply = await admin.UnaryAsync(AdminMethods.SetWeights, request);
                if (Json(parse, reply)) return;
                Render.Changed(_out, $"ramp of bank {request.Bank} started", reply);
            }));
            return command;
        }

        private Command EndpointState(string name, EndpointAdminState state, string description)
        {
            var bank = new Argument<string>("BANK") { Description = "The bank (3-digit code)" };
            var endpoint = new Argument<string>("ENDPOINT") { Description = "The endpoint's name, as 'switchctl banks' shows it" };
            var reason = Reason();
            var command = new Command(name, $"{description}.\nExample: switchctl {name} 102 a --reason \"INC-4521\"") { bank, endpoint, reason };
            command.SetAction(Run(async (parse, admin) =>
            {
                var request = new SetEndpointStateRequest
                {
                    Bank = OperatorArgs.Bank(parse.GetValue(bank) ?? ""),
                    Endpoint = Endpoint(parse.GetValue(endpoint)),
                    State = state,
                    Reason = OperatorArgs.Reason(parse.GetValue(reason)),
                };
                CommandReply reply = await admin.UnaryAsync(AdminMethods.SetEndpointState, request);
                if (Json(parse, reply)) return;
                Render.Changed(_out, $"bank {request.Bank} endpoint {request.Endpoint} {Render.State(state)}", reply);
            }));
            return command;
        }

        private Command Audit()
        {
            var bank = new Option<string>("--bank") { Description = "Only this bank's entries (3-digit code)", HelpName = "BANK" };
            var after = new Option<long>("--after") { Description = "Entries after this audit number (default 0: from the start)", HelpName = "N" };
            var limit = new Option<int>("--limit") { Description = $"At most this many (1..{MaxListLimit}; default {MaxListLimit})", HelpName = "N", DefaultValueFactory = _ => MaxListLimit };
            var follow = new Option<bool>("--follow", "-f") { Description = "Then keep printing new entries as they happen, until Ctrl-C" };
            var command = new Command("audit",
                "Prints the audit log, oldest first: every change with its operator, reason and time (and the switch's own: breaker, connector, schedule).\n" +
                "Example: switchctl audit --bank 102 --follow") { bank, after, limit, follow };
            command.SetAction(Run(async (parse, admin) =>
            {
                string b = BankOrEmpty(parse.GetValue(bank));
                long afterNo = parse.GetValue(after);
                if (afterNo < 0) throw new UsageException($"--after: {afterNo} is negative");
                int max = parse.GetValue(limit);
                if (max < 1 || max > MaxListLimit) throw new UsageException($"--limit: {max} is outside 1..{MaxListLimit}");
                bool json = parse.GetValue(_json);
                var names = json ? new Dictionary<string, IReadOnlyList<string>>() : await EndpointNames(admin);
                if (!parse.GetValue(follow))
                {
                    AuditReply reply = await admin.UnaryAsync(AdminMethods.ListAudit, new AuditRequest { AfterAuditNo = afterNo, Limit = max, Bank = b });
                    if (Json(parse, reply)) return;
                    foreach (AuditEntry e in reply.Entries) _out.WriteLine(Render.AuditLine(e, names));
                    if (reply.Entries.Count == 0) _out.WriteLine("no entries");
                    return;
                }
                await UntilStoppedAsync(admin, async () =>
                {
                    await admin.FindPrimaryAsync();
                    using var call = admin.Channel.ServerStreaming(AdminMethods.TailAudit, new AuditRequest { AfterAuditNo = afterNo, Bank = b }, admin.StreamOptions);
                    await foreach (AuditEntry e in call.ResponseStream.ReadAllAsync(admin.CancellationToken))
                    {
                        _out.WriteLine(json ? JsonFormatter.Default.Format(e) : Render.AuditLine(e, names));
                        _out.Flush();
                    }
                });
            }));
            return command;
        }

        private Command Stats()
        {
            var bank = OptionalBank("Only this bank (3-digit code)");
            var watch = new Option<bool>("--watch", "-w") { Description = "Keep printing fresh figures until Ctrl-C" };
            var interval = new Option<string>("--interval") { Description = "With --watch: how often (at least 250ms; default 1s)", HelpName = "DURATION", DefaultValueFactory = _ => "1s" };
            var command = new Command("stats",
                "Live figures per bank and endpoint over the last 10 s, 1 min and 15 min: requests, req/s, success %, timeout %, p50/p99 ms, in-flight.\n" +
                "Example: switchctl stats 102 --watch --interval 2s") { bank, watch, interval };
            command.SetAction(Run(async (parse, admin) =>
            {
                var request = new StatsRequest { Bank = BankOrEmpty(parse.GetValue(bank)) };
                if (!parse.GetValue(watch))
                {
                    StatsReply reply = await admin.UnaryAsync(AdminMethods.GetStats, request);
                    if (Json(parse, reply)) return;
                    Render.Stats(_out, reply);
                    return;
                }
                long intervalMs = OperatorArgs.DurationMs(parse.GetValue(interval) ?? "", "--interval");
                if (intervalMs < OperatorArgs.MinWatchIntervalMs) throw new UsageException($"--interval: at least {OperatorArgs.MinWatchIntervalMs}ms");
                request.IntervalMs = (int)intervalMs;
                await UntilStoppedAsync(admin, async () =>
                {
                    await admin.FindPrimaryAsync();
                    using var call = admin.Channel.ServerStreaming(AdminMethods.WatchStats, request, admin.StreamOptions);
                    await foreach (StatsReply reply in call.ResponseStream.ReadAllAsync(admin.CancellationToken))
                    {
                        if (!Json(parse, reply))
                        {
                            Render.Stats(_out, reply);
                            _out.WriteLine();
                        }
                        _out.Flush();
                    }
                });
            }));
            return command;
        }

        private Command Alerts()
        {
            var command = new Command("alerts", "Success-rate alerts, active and recent: the bank, since when, the baseline and the actual rate.\nExample: switchctl alerts");
            command.SetAction(Run(async (parse, admin) =>
            {
                ListAlertsReply reply = await admin.UnaryAsync(AdminMethods.ListAlerts, new ListAlertsRequest());
                if (Json(parse, reply)) return;
                Render.Alerts(_out, reply);
            }));
            return command;
        }

        private Command Snapshot()
        {
            var command = new Command("snapshot",
                "Takes a snapshot of the switch's state and derived views now and prints its journal position, file, size and the " +
                "logic's pause; the next start replays only the journal after it. Needs the operate role.\nExample: switchctl snapshot");
            command.SetAction(Run(async (parse, admin) =>
            {
                TakeSnapshotReply reply = await admin.UnaryAsync(AdminMethods.TakeSnapshot, new TakeSnapshotRequest());
                if (Json(parse, reply)) return;
                _out.WriteLine($"snapshot at journal record {reply.Position} ({reply.Events} events): {reply.File}, {reply.Bytes} bytes, " +
                    $"logic paused {reply.PauseUs} us, written in {reply.WriteMs} ms");
            }));
            return command;
        }

        private Command Cluster()
        {
            var stateHash = new Option<bool>("--state-hash")
            {
                Description = "Also each node's state hash at the record it applied (its logic pauses to compute it): a primary and its standby " +
                    "at the same record must show the same hash; compare them with the pair idle",
            };
            var command = new Command("cluster",
                "Asks every node given in --admin for its part of the pair: its role, term, journal records durable and applied, " +
                "and on the primary its standby's acknowledged records, lag and replication state. Exit 0 when every node answered " +
                "and exactly one is the primary.\nExample: switchctl cluster --admin http://127.0.0.1:7003,http://127.0.0.1:7013 --state-hash") { stateHash };
            command.SetAction(Run(async (parse, admin) =>
            {
                bool hash = parse.GetValue(stateHash);
                var answers = await admin.EachAsync(AdminMethods.GetNodeStatus, new NodeStatusRequest { StateHash = hash });
                if (parse.GetValue(_json))
                {
                    // One node's status per line; a node that gave none is said on stderr.
                    foreach (var (address, reply, failure) in answers)
                    {
                        if (reply is null) _err.WriteLine($"switchctl: {address}: {failure}");
                        else _out.WriteLine(JsonFormatter.Default.Format(reply));
                    }
                }
                else
                {
                    Render.Cluster(_out, answers, hash);
                }
                int primaries = answers.Count(a => a.Reply?.Role == "primary");
                if (answers.Any(a => a.Reply is null)) throw new RpcException(StatusCode.Unavailable, "a node did not answer (see its row)");
                if (primaries != 1) throw new RpcException(StatusCode.FailedPrecondition, $"{primaries} nodes say they are the primary");
            }));
            return command;
        }

        private Command Batch()
        {
            var reason = Reason();
            var close = new Command("close", "Closes the open clearing batch now (an engine event) and prints the batch it closed.\nExample: switchctl batch close --reason \"end of day\"") { reason };
            close.SetAction(Run(async (parse, admin) =>
            {
                var request = new CloseBatchRequest { Reason = OperatorArgs.Reason(parse.GetValue(reason)) };
                CloseBatchReply reply = await admin.UnaryAsync(AdminMethods.CloseBatch, request);
                if (Json(parse, reply)) return;
                _out.WriteLine($"closed batch {reply.BatchId}");
            }));
            var limit = new Option<int>("--limit") { Description = $"At most this many (1..{MaxListLimit}; default 50)", HelpName = "N", DefaultValueFactory = _ => 50 };
            var list = new Command("list", "Closed clearing batches, newest first, with whether their files are complete; and the open batch.\nExample: switchctl batch list") { limit };
            list.SetAction(Run(async (parse, admin) =>
            {
                int max = parse.GetValue(limit);
                if (max < 1 || max > MaxListLimit) throw new UsageException($"--limit: {max} is outside 1..{MaxListLimit}");
                ListBatchesReply reply = await admin.UnaryAsync(AdminMethods.ListBatches, new ListBatchesRequest { Limit = max });
                if (Json(parse, reply)) return;
                Render.Batches(_out, reply);
            }));
            return new Command("batch",
                "Clearing batches: 'batch close --reason TEXT' closes the open one; 'batch list [--limit N]' lists the closed ones.\n" +
                "Example: switchctl batch close --reason \"end of day\"") { close, list };
        }

        private Command Settlement()
        {
            var batch = new Argument<long>("BATCH_ID") { Description = "A closed batch's id, as 'switchctl batch list' shows it" };
            var command = new Command("settlement", "A closed batch's settlement instructions: what each participant pays or receives (fen).\nExample: switchctl settlement 3") { batch };
            command.SetAction(Run(async (parse, admin) =>
            {
                long id = parse.GetValue(batch);
                if (id < 1) throw new UsageException($"settlement: batch id {id} is not positive");
                SettlementReply reply = await admin.UnaryAsync(AdminMethods.GetSettlement, new SettlementRequest { BatchId = id });
                if (Json(parse, reply)) return;
                Render.Settlement(_out, reply);
            }));
            return command;
        }

        private Command Report()
        {
            var day = new Option<string>("--day") { Description = "The day, yyyy-MM-dd in the switch's day zone (default: the newest day with figures)", HelpName = "DATE" };
            var hourly = new Option<bool>("--hourly") { Description = "A row per hour of the day (default: one row for the day)" };
            var bank = new Option<string>("--bank") { Description = "Only this bank (3-digit code), or - for the requests the switch refused itself", HelpName = "BANK" };
            var institution = new Option<string>("--institution") { Description = "Only this institution (its code)", HelpName = "CODE" };
            var csv = new Option<bool>("--csv") { Description = "Print CSV (the daily file's columns) instead of a table" };
            var command = new Command("report",
                "Per institution × bank: requests, approvals, declines (business by reason; technical: timeouts, system errors, unavailable),\n" +
                "UNKNOWN outcomes and their time to final, reversals, p50/p99 latency; under bank '-', the requests the switch refused itself\n" +
                "by reject code. A bank's or institution's key sees its own rows only.\n" +
                "Example: switchctl report --day 2026-12-06 --hourly --csv") { day, hourly, bank, institution, csv };
            command.SetAction(Run(async (parse, admin) =>
            {
                string? date = parse.GetValue(day);
                if (!string.IsNullOrEmpty(date) && !DateOnly.TryParseExact(date, "yyyy-MM-dd", out _))
                {
                    throw new UsageException($"--day: '{date}' is not a date as yyyy-MM-dd");
                }
                var request = new MemberReportRequest
                {
                    Day = date ?? "",
                    Hourly = parse.GetValue(hourly),
                    Bank = parse.GetValue(bank) is "-" ? "-" : BankOrEmpty(parse.GetValue(bank)),
                    Institution = parse.GetValue(institution) ?? "",
                };
                MemberReportReply reply = await admin.UnaryAsync(AdminMethods.GetMemberReport, request);
                if (Json(parse, reply)) return;
                if (parse.GetValue(csv)) _out.Write(MemberReportCsv.Document(reply.Rows));
                else Render.MemberReport(_out, reply);
            }));
            return command;
        }

        private Command Explain()
        {
            var order = new Argument<string>("ORDER") { Description = "The order number, as the institution sent it" };
            var institution = new Option<string>("--institution") { Description = "The institution whose order it is (its code; a key scoped to an institution: its own by default)", HelpName = "CODE" };
            var command = new Command("explain",
                "Why an order went where it went, recomputed from the journal: the bank's weights then, each endpoint in the draw or why not\n" +
                "(down, draining, unreachable, breaker open, half-open and not its probe's turn), the hash draw and the endpoint it chose;\n" +
                "for a refusal, the check that refused it with its figures. Replays the journal up to the order: a long journal takes time.\n" +
                "Example: switchctl explain ORD-20261206-0001 --institution ALIPAY") { order, institution };
            command.SetAction(Run(async (parse, admin) =>
            {
                string orderNo = parse.GetValue(order) ?? "";
                if (orderNo.Length == 0) throw new UsageException("explain: give the order number");
                var request = new ExplainRequest { OrderNo = orderNo, Institution = parse.GetValue(institution) ?? "" };
                ExplainReply reply = await admin.UnaryAsync(AdminMethods.ExplainOrder, request);
                if (Json(parse, reply)) return;
                Render.Explanation(_out, reply);
            }));
            return command;
        }

        private Command Breaks()
        {
            var file = new Argument<string>("FILE") { Description = "A participant's own record of a batch, in the reconciliation file format" };
            var command = new Command("breaks",
                "Compares a participant's record of a batch with the switch's and prints every break (单边账) with totals.\n" +
                "Example: switchctl breaks recon-bank-102.csv") { file };
            command.SetAction(Run(async (parse, admin) =>
            {
                string path = parse.GetValue(file) ?? "";
                if (!File.Exists(path)) throw new UsageException($"breaks: no file '{path}'");
                BreakReportReply reply = await SubmitRecordsAsync(admin, path);
                if (Json(parse, reply)) return;
                Render.Breaks(_out, reply);
            }));
            return command;
        }

        private static async Task<BreakReportReply> SubmitRecordsAsync(AdminSession admin, string path)
        {
            CancellationToken ct = admin.CancellationToken;
            await admin.FindPrimaryAsync();
            using var call = admin.Channel.ClientStreaming(AdminMethods.SubmitRecords, admin.StreamOptions);
            byte[] buffer = new byte[RecordsChunkBytes];
            await using FileStream file = OpenRecords(path);
            while (true)
            {
                int n;
                try
                {
                    n = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct);
                }
                catch (IOException e)
                {
                    throw new UsageException($"breaks: cannot read '{path}': {e.Message}");
                }
                if (n == 0) break;
                await SendOrExplainAsync(call, () => call.RequestStream.WriteAsync(new RecordsChunk { Data = ByteString.CopyFrom(buffer, 0, n) }, ct).AsTask());
            }
            await SendOrExplainAsync(call, call.RequestStream.CompleteAsync);
            return await call.ResponseAsync;
        }

        private static FileStream OpenRecords(string path)
        {
            try
            {
                return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"breaks: cannot read '{path}': {e.Message}");
            }
        }

        /// <summary>The switch may refuse the file (a malformed line) before it has all of it: then its status, not the
        /// failed write, says why.</summary>
        private static async Task SendOrExplainAsync(ClientStreamingCall<RecordsChunk, BreakReportReply> call, Func<Task> send)
        {
            try
            {
                await send();
            }
            catch (Exception) when (!call.ResponseAsync.IsCompletedSuccessfully)
            {
                await call.ResponseAsync; // throws the switch's RpcException when it ended the call
                throw;
            }
        }

        /// <summary>Runs a command body with the session; maps every failure to its exit code and a one-line message.</summary>
        private Func<ParseResult, CancellationToken, Task<int>> Run(Func<ParseResult, AdminSession, Task> body) => async (parse, ct) =>
        {
            string command = parse.CommandResult.Command.Name;
            AdminSession? session = null;
            try
            {
                string url = parse.GetValue(_admin) ?? _environment(AdminUrlVariable) ?? AdminSession.DefaultAdminUrl;
                string? key = parse.GetValue(_key) ?? _environment(KeyVariable);
                string? caCert = parse.GetValue(_caCert) ?? _environment(CaCertVariable);
                using var admin = new AdminSession(url, key, caCert, ct);
                session = admin;
                await body(parse, admin);
                if (admin.SeveralAddresses || admin.Moved) _err.WriteLine($"switchctl: answered by {admin.Address}");
                return ExitCodes.Ok;
            }
            catch (UsageException e)
            {
                _err.WriteLine($"switchctl: usage: {e.Message}");
                _err.WriteLine($"Run 'switchctl {command} --help' for usage and examples.");
                return ExitCodes.Usage;
            }
            catch (RpcException e)
            {
                string detail = e.Status.Detail.Length > 0 ? e.Status.Detail : "(no detail)";
                string from = session is { SeveralAddresses: true } or { Moved: true } ? $" (from {session.Address})" : "";
                _err.WriteLine($"switchctl: {ExitCodes.Name(e.StatusCode)}: {command}: {detail}{from}");
                return ExitCodes.For(e.StatusCode);
            }
        };

        /// <summary>Ctrl-C is how a follow or a watch ends: that is success. A cancelled one-shot command is not (CANCELLED, exit 1).</summary>
        private static async Task UntilStoppedAsync(AdminSession admin, Func<Task> stream)
        {
            try
            {
                await stream();
            }
            catch (Exception e) when (admin.CancellationToken.IsCancellationRequested && e is RpcException or OperationCanceledException)
            {
            }
        }

        private bool Json(ParseResult parse, IMessage reply)
        {
            if (!parse.GetValue(_json)) return false;
            _out.WriteLine(JsonFormatter.Default.Format(reply));
            return true;
        }

        private static async Task<Dictionary<string, IReadOnlyList<string>>> EndpointNames(AdminSession admin)
        {
            ListBanksReply banks = await admin.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest());
            return banks.Banks.ToDictionary(b => b.Bank, b => (IReadOnlyList<string>)b.Endpoints.Select(e => e.Name).ToList(), StringComparer.Ordinal);
        }

        private static SetWeightsRequest WeightsRequest(ParseResult parse, Argument<string> bank, Argument<string[]> weights, Option<string> reason)
        {
            var request = new SetWeightsRequest
            {
                Bank = OperatorArgs.Bank(parse.GetValue(bank) ?? ""),
                Reason = OperatorArgs.Reason(parse.GetValue(reason)),
            };
            request.ByEndpoint.Add(OperatorArgs.Weights(parse.GetValue(weights) ?? []));
            return request;
        }

        private static Argument<string[]> WeightsArgument() => new("NAME=BPS")
        {
            Description = "One per endpoint: basis points (a=9500) or a percentage (a=95%); together 10000 bps = 100%",
            Arity = ArgumentArity.OneOrMore,
        };

        private static Option<string> Reason() => new("--reason", "-r")
        {
            Description = $"Why (required; printable, at most {OperatorArgs.MaxReasonBytes} bytes); recorded in the audit log",
            Required = true, HelpName = "TEXT",
        };

        private static Argument<string> OptionalBank(string description) => new("BANK") { Description = description, Arity = ArgumentArity.ZeroOrOne };

        private static string BankOrEmpty(string? bank) => string.IsNullOrEmpty(bank) ? "" : OperatorArgs.Bank(bank);

        private static string Endpoint(string? name)
        {
            if (string.IsNullOrEmpty(name) || name.Length > OperatorArgs.MaxEndpointNameLength)
                throw new UsageException($"endpoint '{name}': give the endpoint's name (1..{OperatorArgs.MaxEndpointNameLength} characters)");
            return name;
        }
    }
}
