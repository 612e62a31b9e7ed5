using System.Runtime.CompilerServices;
using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// The business logic processor: all switch state, changed by one thread, one event at a time, in journal
/// order. Deterministic: it reads nothing but the event (time comes from the event's timestamp), so replaying
/// the journal into a fresh instance rebuilds exactly the same state and the same outputs.
/// An impossible state is an exception that stops the engine rather than corrupting money.
/// The rules are here, one handler per event kind; the state they work on is kept by collaborators with one job
/// each: <see cref="OrderMemory"/>, <see cref="ClearingBook"/>, <see cref="TransactionTimers"/>,
/// <see cref="EndpointControl"/>, and <see cref="OutputWriter"/> for everything that goes out.
/// </summary>
public sealed partial class SwitchLogic
{
    private const long MicrosPerMs = 1_000;
    private const long MicrosPerDay = 86_400_000_000;
    /// <summary>Discrepancies kept for inspection; the count goes on beyond it.</summary>
    public const int MaxDiscrepanciesKept = 1024;

    private static readonly Text32 ReasonReversed = Text32.From("REVERSED");
    private static readonly Text32 ReasonNotReceived = Text32.From("BANK_NOT_RECEIVED");
    /// <summary>Who closed a batch the schedule closed (in the batch's files).</summary>
    private static readonly Text32 ReasonSchedule = Text32.From("SCHEDULE");
    /// <summary>The switch's own identity in the audit log, for closes no operator made.</summary>
    private static readonly Text32 ActorSchedule = Text32.From("schedule");
    private static readonly Text64 NoteScheduledClose = OutputWriter.Note("scheduled close");

    private readonly RulesConfig _rules;
    private readonly Institution[] _institutions;
    private readonly Bank[] _banks;
    private readonly Bank?[] _banksByCode = new Bank?[1000];
    /// <summary>Institution code hash → index; codes' hashes are unique (checked by the config validator).</summary>
    private readonly Dictionary<ulong, int> _institutionByCodeHash;
    private readonly TransactionTable _transactions;
    private readonly OrderMemory _orders;
    private readonly DailyAccountUsage _dailyUsage;
    private readonly TransactionTimers _timers;
    private readonly ClearingBook _book;
    private readonly EndpointControl _endpoints;
    private readonly OutputWriter _out;
    private readonly List<Discrepancy> _discrepancies = new();
    private readonly BatchSchedule _schedule;
    /// <summary>The next scheduled close (UTC µs); 0 until the first tick sets it, long.MaxValue with no schedule.</summary>
    private long _nextScheduledCloseUs;

    /// <param name="archive">Where evicted transactions go; the engine gives one on disk, tools and tests may leave
    /// it to an archive in memory.</param>
    public SwitchLogic(SwitchConfig config, IOutputSink sink, ITransactionArchive? archive = null)
    {
        ConfigValidator.Validate(config);
        Config = config;
        _rules = config.Rules;
        _institutions = new Institution[config.Institutions.Count];
        _institutionByCodeHash = new Dictionary<ulong, int>(config.Institutions.Count);
        for (int i = 0; i < _institutions.Length; i++)
        {
            InstitutionConfig ic = config.Institutions[i];
            byte[] code = System.Text.Encoding.ASCII.GetBytes(ic.Code);
            _institutions[i] = new Institution { Index = i, Config = ic, CodeUtf8 = code, Enabled = ic.Enabled };
            _institutionByCodeHash.Add(StableHash.OfBytes(code), i);
        }
        _banks = new Bank[config.Banks.Count];
        for (int b = 0; b < _banks.Length; b++)
        {
            BankConfig bc = config.Banks[b];
            var endpoints = new Endpoint[bc.Endpoints.Count];
            for (int e = 0; e < endpoints.Length; e++)
            {
                EndpointConfig ec = bc.Endpoints[e];
                endpoints[e] = new Endpoint
                {
                    Name = ec.Name, InFlightCap = ec.InFlightCap, WeightBps = ec.WeightBps, Breaker = new EndpointBreaker(_rules),
                };
            }
            _banks[b] = new Bank { Index = b, Config = bc, Endpoints = endpoints };
            _banksByCode[bc.Code] = _banks[b];
        }
        // Every transaction that is not final counts against its bank's bound, so the parked ones fit in the sum.
        _transactions = new TransactionTable(_rules.TransactionCapacity, checked(_banks.Length * _rules.MaxUnresolvedPerBank));
        _orders = new OrderMemory(_transactions, archive ?? new MemoryTransactionArchive(), _rules.OrderMemoryTransactions);
        _dailyUsage = new DailyAccountUsage(_rules.MaxTrackedAccounts);
        _timers = new TransactionTimers(_transactions, _rules.TransactionCapacity);
        _out = new OutputWriter(_institutions, _banks, sink);
        _book = new ClearingBook(_institutions, _banks);
        _endpoints = new EndpointControl(_banks, _rules, _out);
        _schedule = new BatchSchedule(_rules.BatchCloseTimes, _rules.DayUtcOffsetHours);
    }

    public SwitchConfig Config { get; }
    /// <summary>The latest event time seen; never goes backwards even if producers' stamps interleave.</summary>
    public long NowUs { get; private set; }
    public long EventsApplied { get; private set; }
    /// <summary>The leadership term in effect (0 before the first: a single node never has one).</summary>
    public long Term { get; private set; }
    /// <summary>The journal record that began <see cref="Term"/> (0 with no term): the replica handshake's cut point.</summary>
    public long TermStartRecordNo { get; private set; }
    public long SwitchFeeFen => _book.SwitchFeeFen;
    /// <summary>The clearing batch outcomes finalise into now; batches are numbered 1, 2, 3...</summary>
    public long OpenBatchId => _book.OpenBatchId;
    /// <summary>When the open batch opened: the previous close, or the first event for batch 1. Like <see cref="NowUs"/>, a
    /// mark of time rather than state: not in the state hash.</summary>
    public long OpenBatchOpenedUs => _book.OpenBatchOpenedUs;
    /// <summary>Transactions finalised (succeeded or failed) in the open batch.</summary>
    public long OpenBatchFinalised => _book.OpenBatchFinalised;
    public BatchTotals SwitchFeeOpen => _book.SwitchFeeOpen;
    public long UnmatchedBankResults { get; private set; }
    public long DuplicateBankResults { get; private set; }
    public long DiscrepancyCount { get; private set; }
    /// <summary>The last audit entry's number (entries are numbered 1, 2, 3... in engine order).</summary>
    public long LastAuditNo => _out.LastAuditNo;
    /// <summary>Reachability reports about an endpoint the configuration does not have (ignored, counted).</summary>
    public long IgnoredReachabilityReports { get; private set; }
    public IReadOnlyList<Discrepancy> Discrepancies => _discrepancies;
    public IReadOnlyList<Institution> Institutions => _institutions;
    public IReadOnlyList<Bank> Banks => _banks;
    public TransactionTable Transactions => _transactions;
    public int PendingTimers => _timers.Count;

    /// <summary>Swaps where outputs go: replay runs with a discarding sink, then the live engine takes over.</summary>
    public void SetSink(IOutputSink sink) => _out.SetSink(sink);

    /// <summary>A hint, for an event a few places ahead in the batch: starts loading what it will read at random (cache
    /// and TLB misses) so the misses overlap the events before it instead of stalling its own. A bank answer: its
    /// transaction's slot (1 M slots apart). A payment, payout or refund: its order's index entry and archive filter
    /// block, and a payment's payer-account entry; a refund's original order's and a query's order's too. Reads the
    /// event and the tables' geometry only: changes nothing.</summary>
    public void PrefetchFor(in InputEvent e)
    {
        if (e.Kind == EventKind.BankResult) _transactions.Prefetch(e.TransactionId);
        else if (e.Kind == EventKind.InstitutionRequest && e.RequestType is RequestType.AgreementPayment or RequestType.Payout or RequestType.Refund or RequestType.Query)
        {
            PrefetchForRequest(in e);
        }
    }

    /// <summary>The look-ups <see cref="OnTransfer"/> or <see cref="OnQuery"/> makes first, for a request of a known
    /// institution (and bank); the fields are not checked here (an overlong one reads as empty): a bad request is
    /// refused by its checks. A query's and a refund's original's order index entries were the logic's largest misses
    /// not started ahead (profiled at the design peak, a tenth of its queries and a twentieth of its refunds: OnQuery's
    /// look-up alone 3.4% of the logic's samples).</summary>
    private void PrefetchForRequest(in InputEvent e)
    {
        if (!_institutionByCodeHash.TryGetValue(StableHash.OfBytes(e.Institution.Span), out int institution)) return;
        _orders.Prefetch(new ScopedKey(institution, e.OrderNo.Span).Hash64());
        if (e.RequestType == RequestType.Refund) _orders.Prefetch(new ScopedKey(institution, e.OriginalOrderNo.Span).Hash64());
        if (e.RequestType != RequestType.AgreementPayment) return;
        int bankCode = FieldRules.NormaliseBankCode(e.BankRef.Span);
        if (bankCode >= 0 && _banksByCode[bankCode] is { } bank) _dailyUsage.Prefetch(new ScopedKey(bank.Index, e.Account.Span));
    }

    public void Apply(ref InputEvent e)
    {
        if (e.TimestampUs > NowUs)
        {
            NowUs = e.TimestampUs;
            _out.NowUs = NowUs;
        }
        EventsApplied++;
        _book.Seen(NowUs);
        switch (e.Kind)
        {
            case EventKind.InstitutionRequest:
                if (_probe is null) OnRequest(ref e);
                else OnProbedRequest(ref e);
                break;
            case EventKind.BankResult:
                OnBankResult(ref e);
                break;
            case EventKind.Tick:
                OnTick();
                break;
            case EventKind.SetEndpointWeights:
                OnSetEndpointWeights(ref e);
                break;
            case EventKind.SetEndpointState:
                OnSetEndpointState(ref e);
                break;
            case EventKind.CloseBatch:
                OnCloseBatch(ref e);
                break;
            case EventKind.EndpointReachability:
                OnEndpointReachability(ref e);
                break;
            case EventKind.Term:
                OnTerm(ref e);
                break;
            default:
                throw new InvalidOperationException($"logic: event kind {e.Kind} cannot be applied");
        }
        if (_verify)
        {
            VerifyAfter(ref e);
        }
    }

    // ---------------------------------------------------------------- leadership terms

    /// <summary>Only the engine publishes a term, above the one it holds (<see cref="Pipeline.SwitchEngine.BeginTerm"/>):
    /// anything else is a fault, never a state to carry on from.</summary>
    private void OnTerm(ref InputEvent e)
    {
        if (e.Term <= Term) throw new InvalidOperationException($"logic: term {e.Term} after term {Term}: terms only grow");
        Term = e.Term;
        // Every journaled record but the genesis is one applied event, so the count is this record's number.
        TermStartRecordNo = EventsApplied;
    }

    // ---------------------------------------------------------------- institution requests

    private void OnRequest(ref InputEvent e)
    {
        Refusal refusal = CheckInstitution(ref e, out Institution? inst);
        if (!refusal.Refused)
        {
            refusal = RequestChecks.Code(in e.OrderNo, FieldRules.OrderNoMaxBytes, RequestField.OrderNo);
        }
        if (!refusal.Refused && e.ClientDeadlineUs != 0 && e.JournaledUs >= e.ClientDeadlineUs)
        {
            // The client stopped waiting before the request was durable: it has been told DEADLINE_EXCEEDED, so the
            // request must not execute. Both stamps are in the journaled record: replay decides the same.
            refusal = new Refusal(RejectCode.DeadlinePassed, RequestField.None);
        }
        if (refusal.Refused)
        {
            _out.Reject(ref e, refusal);
            return;
        }
        switch (e.RequestType)
        {
            case RequestType.AgreementPayment:
            case RequestType.Payout:
            case RequestType.Refund:
                OnTransfer(ref e, inst!);
                break;
            case RequestType.Query:
                OnQuery(ref e, inst!);
                break;
            default:
                _out.Reject(ref e, new Refusal(RejectCode.UnsupportedRequestType, RequestField.RequestType));
                break;
        }
    }

    /// <summary>The request's institution: a well-formed code, configured, enabled.</summary>
    private Refusal CheckInstitution(ref InputEvent e, out Institution? inst)
    {
        inst = null;
        Refusal refusal = RequestChecks.Code(in e.Institution, FieldRules.InstitutionMaxBytes, RequestField.Institution);
        if (refusal.Refused)
        {
            return refusal;
        }
        ReadOnlySpan<byte> code = e.Institution.Span;
        if (!_institutionByCodeHash.TryGetValue(StableHash.OfBytes(code), out int index)
            || !code.SequenceEqual(_institutions[index].CodeUtf8))
        {
            return new Refusal(RejectCode.UnknownInstitution, RequestField.Institution);
        }
        inst = _institutions[index];
        return inst.Enabled ? Refusal.None : new Refusal(RejectCode.InstitutionDisabled, RequestField.Institution);
    }

    private void OnQuery(ref InputEvent e, Institution inst)
    {
        ref Transaction tx = ref _orders.Find(new ScopedKey(inst.Index, e.OrderNo.Span), out _);
        if (Unsafe.IsNullRef(ref tx))
        {
            _out.Reject(ref e, new Refusal(RejectCode.OrderNotFound, RequestField.OrderNo));
            return;
        }
        _out.Answer(ref tx, e.CorrelationId, duplicate: false, queryAnswer: true);
    }

    /// <summary>A payment, payout or refund: checked, answered as a repeat, refused, or admitted and sent to its bank.</summary>
    private void OnTransfer(ref InputEvent e, Institution inst)
    {
        // The order number is checked (OnRequest): its index entry, a random cache miss, loads while the fields are.
        var orderKey = new ScopedKey(inst.Index, e.OrderNo.Span);
        ulong orderHash = orderKey.Hash64();
        _orders.Prefetch(orderHash);
        Refusal refusal = RequestChecks.TransferFields(ref e, inst, _banksByCode, out Bank? bank);
        if (refusal.Refused)
        {
            _out.Reject(ref e, refusal);
            return;
        }
        if (e.RequestType == RequestType.AgreementPayment && bank is not null)
        {
            _dailyUsage.Prefetch(new ScopedKey(bank.Index, e.Account.Span)); // overlaps the order look-up's miss
        }
        ref Transaction existing = ref _orders.Find(orderKey, orderHash, out _);
        if (!Unsafe.IsNullRef(ref existing))
        {
            if (SameContent(ref existing, ref e, bank))
            {
                _out.Answer(ref existing, e.CorrelationId, duplicate: true);
            }
            else
            {
                _out.Reject(ref e, new Refusal(RejectCode.DuplicateOrderConflict, RequestField.OrderNo));
            }
            return;
        }
        refusal = Admit(ref e, inst, bank, out Admission admitted);
        if (refusal.Code == RejectCode.BankUnresolvedLimit)
        {
            // The bank is slow or away: only its own new work waits, everyone else's goes on.
            _out.RejectBankUnresolved(ref e, admitted.Bank, _rules.MaxUnresolvedPerBank);
        }
        else if (refusal.Refused)
        {
            _out.Reject(ref e, refusal);
        }
        else
        {
            Issue(ref e, inst, orderHash, in admitted);
        }
    }

    /// <summary>What admission decided for a transfer: where it goes and what it costs.</summary>
    private struct Admission
    {
        public Bank Bank;
        public int EndpointIndex;
        public long FeeFen;
        public long OriginalId;
        /// <summary>The account the bank moves money on: a refund's is its original payer's.</summary>
        public Text32 Account;
        /// <summary>The day the daily account limit was reserved on.</summary>
        public int Day;
    }

    /// <summary>
    /// The checks against state, in order: the refund's original, the bank's unresolved bound, routing, the
    /// endpoint's in-flight cap, the net debit cap, the daily account limit. The last one reserves the account's
    /// day when it passes, so nothing is changed by a refusal.
    /// </summary>
    private Refusal Admit(ref InputEvent e, Institution inst, Bank? bank, out Admission admitted)
    {
        admitted = default;
        admitted.Account = e.Account;
        if (e.RequestType == RequestType.Refund)
        {
            // The refund goes back to the original payer, at the original's bank.
            ref Transaction original = ref _orders.Find(new ScopedKey(inst.Index, e.OriginalOrderNo.Span), out _);
            if (Unsafe.IsNullRef(ref original))
            {
                return new Refusal(RejectCode.OriginalNotFound, RequestField.OriginalOrderNo);
            }
            Refusal refusal = RequestChecks.Refundable(ref original, e.AmountFen);
            if (refusal.Refused)
            {
                return refusal;
            }
            admitted.OriginalId = original.Id;
            admitted.Account = original.Account;
            bank = _banks[original.BankIndex];
        }
        admitted.Bank = bank!;
        if (bank!.Unresolved >= _rules.MaxUnresolvedPerBank)
        {
            return new Refusal(RejectCode.BankUnresolvedLimit, RequestField.Bank);
        }
        admitted.EndpointIndex = Routing.PickEndpoint(bank, _transactions.LastId + 1);
        if (admitted.EndpointIndex < 0)
        {
            return new Refusal(RejectCode.BankUnavailable, RequestField.Bank);
        }
        Endpoint endpoint = bank.Endpoints[admitted.EndpointIndex];
        if (endpoint.InFlight >= endpoint.InFlightCap)
        {
            return new Refusal(RejectCode.EndpointBusy, RequestField.Bank);
        }
        admitted.FeeFen = inst.FeeFen(e.RequestType, e.AmountFen);
        if (e.RequestType != RequestType.AgreementPayment
            && inst.PositionFen - inst.ReservedDebitFen - (e.AmountFen + admitted.FeeFen) < -inst.Config.NetDebitCapFen)
        {
            return new Refusal(RejectCode.NetDebitCapExceeded, RequestField.Amount);
        }
        admitted.Day = DayOf(NowUs);
        if (e.RequestType == RequestType.AgreementPayment)
        {
            var accountKey = new ScopedKey(bank.Index, e.Account.Span);
            switch (_dailyUsage.TryReserve(accountKey, admitted.Day, e.AmountFen, bank.Config.DailyAccountLimitFen))
            {
                case DailyAccountUsage.Reservation.OverDailyLimit:
                    return new Refusal(RejectCode.DailyLimitExceeded, RequestField.Amount);
                case DailyAccountUsage.Reservation.TableFull:
                    return new Refusal(RejectCode.AccountTableFull, RequestField.Account);
            }
        }
        return Refusal.None;
    }

    /// <summary>An admitted transfer: issued, its money reserved, its deadline armed, its request sent. Nothing refuses it now.</summary>
    private void Issue(ref InputEvent e, Institution inst, ulong orderHash, in Admission admitted)
    {
        long routedId = _transactions.LastId + 1;
        _orders.MakeRoomForNext();
        ref Transaction tx = ref _transactions.Issue();
        if (tx.Id != routedId) throw new InvalidOperationException("logic: issued id differs from the routed id");
        Bank bank = admitted.Bank;
        tx.Type = e.RequestType;
        tx.InstitutionIndex = inst.Index;
        tx.BankIndex = bank.Index;
        tx.EndpointIndex = admitted.EndpointIndex;
        tx.AmountFen = e.AmountFen;
        tx.FeeFen = admitted.FeeFen;
        tx.OriginalId = admitted.OriginalId;
        tx.LimitDay = admitted.Day;
        tx.CorrelationId = e.CorrelationId;
        tx.ReceivedUs = NowUs;
        tx.DispatchedUs = NowUs;
        tx.OrderNo = e.OrderNo;
        tx.Account = admitted.Account;
        if (tx.Type == RequestType.Refund) tx.OriginalOrderNo = e.OriginalOrderNo;
        tx.Echo = e.Echo;
        tx.Status = TransactionStatus.Dispatched;
        _orders.Remember(orderHash, tx.Id);
        bank.Unresolved++;

        if (tx.Type != RequestType.AgreementPayment)
        {
            inst.ReservedDebitFen += tx.AmountFen + tx.FeeFen;
        }
        if (tx.Type == RequestType.Refund)
        {
            AdjustOriginal(ref tx, reservedDeltaFen: tx.AmountFen, refundedDeltaFen: 0);
        }
        Endpoint endpoint = bank.Endpoints[admitted.EndpointIndex];
        endpoint.InFlight++;
        if (endpoint.InFlight > endpoint.InFlightCap) throw new InvalidOperationException($"logic: endpoint {endpoint.Name} in flight above its cap");
        endpoint.DispatchedCount++;
        _timers.ArmDeadline(ref tx, BankDeadlineUs(ref tx));
        EmitBankRequest(ref tx, tx.IsDebit ? BankOperation.Debit : BankOperation.Credit, admitted.EndpointIndex, attempt: 1);
    }

    /// <summary>A repeat of an order is the same request when everything that moves money matches.</summary>
    private static bool SameContent(ref Transaction tx, ref InputEvent e, Bank? bank)
    {
        if (tx.Type != e.RequestType || tx.AmountFen != e.AmountFen)
        {
            return false;
        }
        if (tx.Type == RequestType.Refund)
        {
            return tx.OriginalOrderNo.Equals(e.OriginalOrderNo);
        }
        return bank is not null && tx.BankIndex == bank.Index && tx.Account.Equals(e.Account);
    }

    /// <summary>A refund's reservation or result, applied to its original payment wherever the original now is.</summary>
    private void AdjustOriginal(ref Transaction refund, long reservedDeltaFen, long refundedDeltaFen)
    {
        var order = new ScopedKey(refund.InstitutionIndex, refund.OriginalOrderNo.Span);
        ref Transaction original = ref _orders.Find(order, out bool archived);
        if (Unsafe.IsNullRef(ref original))
        {
            return; // past the switch's memory while the refund was in flight: nothing left to keep in step
        }
        if (original.Id != refund.OriginalId) throw new InvalidOperationException($"logic: refund {refund.Id} names {refund.OriginalId}, found {original.Id}");
        original.RefundReservedFen += reservedDeltaFen;
        original.RefundedFen += refundedDeltaFen;
        if (original.RefundReservedFen < 0 || original.RefundedFen > original.AmountFen)
        {
            throw new InvalidOperationException($"logic: refunds of {original.Id} exceed it");
        }
        if (archived)
        {
            _orders.WriteBack(order, original);
        }
    }

    // ---------------------------------------------------------------- bank results

    private void OnBankResult(ref InputEvent e)
    {
        if (!_transactions.TryFind(e.TransactionId, out int index))
        {
            UnmatchedBankResults++;
            return;
        }
        ref Transaction tx = ref _transactions[index];
        if (!Expected(ref tx, ref e))
        {
            UnmatchedBankResults++;
            return;
        }
        if (tx.Status == TransactionStatus.Dispatched)
        {
            LeaveDispatched(ref tx);
            if (e.Operation is BankOperation.Debit or BankOperation.Credit)
            {
                // The first answer within the deadline: a call for the breaker, failed only if the endpoint failed
                // (a business decline such as INSUFFICIENT_FUNDS says nothing about the endpoint).
                _endpoints.RecordCall(_banks[tx.BankIndex], tx.EndpointIndex,
                    failed: e.Reply == BankReply.Failed && EndpointBreaker.IsSystemFailure(e.Reason.Span), NowUs);
            }
        }
        if (e.Operation == BankOperation.Reverse)
        {
            if (e.Reply == BankReply.Succeeded)
            {
                Resolve(ref tx, TransactionStatus.Failed, in ReasonReversed);
            }
            // A refused reversal is retried by the follow-up timer; the outcome stays unknown meanwhile.
            return;
        }
        switch (e.Reply)
        {
            case BankReply.Succeeded:
                if (tx.Reversing && !tx.IsFinal)
                {
                    // A reversal is under way: only its answer decides, or the debit could be undone after success.
                    return;
                }
                Resolve(ref tx, TransactionStatus.Succeeded, in e.Reason);
                break;
            case BankReply.Failed:
                Resolve(ref tx, TransactionStatus.Failed, in e.Reason);
                break;
            case BankReply.NotFound:
                // "No record" is final only once the bank can no longer execute the request: banks refuse work past the
                // deadline they were sent (BankDeadlineUs, decided here, sent as is), and every query leaves once the
                // transaction is unknown, at or after that deadline. (A reversal the bank acknowledged bars the id too;
                // that answer made the transaction final already.) Otherwise it stays unknown and is asked again.
                if (tx.Status == TransactionStatus.Unknown && tx.UnknownSinceUs >= BankDeadlineUs(ref tx))
                {
                    Resolve(ref tx, TransactionStatus.Failed, in ReasonNotReceived);
                }
                break;
            case BankReply.Pending:
                break; // the next follow-up asks again
        }
    }

    /// <summary>Whether a bank answer fits the transaction: an answer to an operation it was sent.</summary>
    private static bool Expected(ref Transaction tx, ref InputEvent e)
    {
        bool expected = e.Operation switch
        {
            BankOperation.Debit => tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            BankOperation.Credit => !tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            BankOperation.Query => e.Reply is BankReply.Succeeded or BankReply.Failed or BankReply.NotFound or BankReply.Pending,
            BankOperation.Reverse => tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            _ => false,
        };
        // Also unexpected: an answer to a query never sent (queries leave only once a transaction is unknown).
        return expected && !(tx.Status == TransactionStatus.Dispatched && e.Reply is BankReply.NotFound or BankReply.Pending);
    }

    private void LeaveDispatched(ref Transaction tx)
    {
        Endpoint endpoint = _banks[tx.BankIndex].Endpoints[tx.EndpointIndex];
        endpoint.InFlight--;
        if (endpoint.InFlight < 0) throw new InvalidOperationException($"logic: endpoint {endpoint.Name} in-flight below zero");
    }

    private void Resolve(ref Transaction tx, TransactionStatus outcome, in Text32 reason)
    {
        if (tx.IsFinal)
        {
            if (tx.Status == outcome)
            {
                DuplicateBankResults++;
            }
            else
            {
                // A final outcome never changes: keep the contradiction for the operators, apply nothing.
                DiscrepancyCount++;
                if (_discrepancies.Count < MaxDiscrepanciesKept)
                {
                    _discrepancies.Add(new Discrepancy(tx.Id, tx.Status, outcome, reason.ToString(), NowUs));
                }
            }
            return;
        }
        Finalise(ref tx, outcome, in reason);
    }

    private void Finalise(ref Transaction tx, TransactionStatus outcome, in Text32 reason)
    {
        if (outcome is not (TransactionStatus.Succeeded or TransactionStatus.Failed)) throw new ArgumentOutOfRangeException(nameof(outcome));
        if (tx.IsFinal) throw new InvalidOperationException($"logic: {tx.Id} finalised twice");
        Institution inst = _institutions[tx.InstitutionIndex];
        Bank bank = _banks[tx.BankIndex];
        Endpoint endpoint = bank.Endpoints[tx.EndpointIndex];
        bool succeeded = outcome == TransactionStatus.Succeeded;

        ReleaseReservations(ref tx, inst, succeeded);
        if (succeeded)
        {
            _book.Post(tx.Type, inst, bank, tx.AmountFen, tx.FeeFen);
            endpoint.SucceededCount++;
        }
        else
        {
            endpoint.FailedCount++;
        }
        tx.Status = outcome;
        tx.Reason = reason;
        tx.FinalUs = NowUs;
        tx.TimerDueUs = 0;
        tx.FeedNo = ++inst.FeedCount;
        tx.BatchId = _book.CountFinalised();
        if (_verify) VerifyFeedNumber(ref tx);
        _out.Feed(ref tx);
        // Every request gets exactly one answer: one that was already answered "unknown" at its deadline learns
        // its final outcome from the institution's outcome feed (or a query), not from a second answer.
        if (tx.UnknownSinceUs == 0)
        {
            _out.Answer(ref tx, tx.CorrelationId, duplicate: false);
        }
        bank.Unresolved--;
        if (bank.Unresolved < 0) throw new InvalidOperationException($"logic: bank {bank.Code} unresolved below zero");
        _orders.Finalised(ref tx);
    }

    /// <summary>Releases what was reserved before the bank call: the daily account limit of a failed payment, the
    /// net debit reservation of a payout or refund, a refund's hold on its original.</summary>
    private void ReleaseReservations(ref Transaction tx, Institution inst, bool succeeded)
    {
        if (tx.Type == RequestType.AgreementPayment)
        {
            if (!succeeded)
            {
                _dailyUsage.Release(new ScopedKey(tx.BankIndex, tx.Account.Span), tx.LimitDay, tx.AmountFen);
            }
        }
        else
        {
            inst.ReservedDebitFen -= tx.AmountFen + tx.FeeFen;
            if (inst.ReservedDebitFen < 0) throw new InvalidOperationException($"logic: {inst.Config.Code} reserved debit below zero");
        }
        if (tx.Type == RequestType.Refund)
        {
            AdjustOriginal(ref tx, reservedDeltaFen: -tx.AmountFen, refundedDeltaFen: succeeded ? tx.AmountFen : 0);
        }
    }

    // ---------------------------------------------------------------- time

    /// <summary>
    /// The earliest event time at which a tick has work: a bank deadline, a follow-up, a ramp step or breaker half-open,
    /// a scheduled close, or the start of the next local day (views that roll over by day then see an event);
    /// <see cref="long.MaxValue"/> for none, 0 before the first tick has read the schedule. The engine journals a tick
    /// only once this has come (an idle switch journals almost nothing). A stale deadline (answered since) may still make
    /// one tick that finds nothing to do. Logic thread.
    /// </summary>
    public long NextTickDueUs()
    {
        if (_nextScheduledCloseUs == 0) return 0;
        long dueUs = Math.Min(_nextScheduledCloseUs, _endpoints.NextTimedUs);
        dueUs = Math.Min(dueUs, _timers.NextDueUs);
        return Math.Min(dueUs, (DayOf(NowUs) + 1L) * MicrosPerDay - _rules.DayUtcOffsetHours * 3_600_000_000L);
    }

    private void OnTick()
    {
        // The schedule is part of applying the tick: same ticks in the journal, same closes on replay.
        if (_nextScheduledCloseUs == 0)
        {
            _nextScheduledCloseUs = _schedule.NextCloseUs(NowUs);
        }
        else if (NowUs >= _nextScheduledCloseUs)
        {
            // Closes missed while no ticks came (the switch was down) collapse into this one.
            CloseBatch(correlationId: 0, in ReasonSchedule, in ActorSchedule, in NoteScheduledClose);
            _nextScheduledCloseUs = _schedule.NextCloseUs(NowUs);
        }
        _endpoints.RunDue(NowUs);
        while (_timers.TryTakeDueDeadline(NowUs, out int index))
        {
            ref Transaction tx = ref _transactions[index];
            if (tx.Status != TransactionStatus.Dispatched) throw new InvalidOperationException($"logic: deadline of {tx.Id} in {tx.Status}");
            DeadlinePassed(ref tx);
        }
        while (_timers.TryTakeDueFollowUp(NowUs, out int index))
        {
            ref Transaction tx = ref _transactions[index];
            // A deadline that overflowed the deadline queue waits here (see TransactionTimers.ArmDeadline).
            if (tx.Status == TransactionStatus.Dispatched)
            {
                DeadlinePassed(ref tx);
            }
            else
            {
                FollowUp(ref tx);
            }
        }
    }

    /// <summary>No bank answer by the deadline: the outcome is unknown until a query settles it.</summary>
    private void DeadlinePassed(ref Transaction tx)
    {
        LeaveDispatched(ref tx);
        _banks[tx.BankIndex].Endpoints[tx.EndpointIndex].TimedOutCount++;
        _endpoints.RecordCall(_banks[tx.BankIndex], tx.EndpointIndex, failed: true, NowUs);
        tx.Status = TransactionStatus.Unknown;
        tx.UnknownSinceUs = NowUs;
        _out.Answer(ref tx, tx.CorrelationId, duplicate: false);
        _timers.ArmFollowUp(ref tx, NowUs + _rules.QueryBackoffInitialMs * MicrosPerMs);
    }

    /// <summary>Asks the bank about an unknown transaction, or reverses a debit unknown for too long; then re-arms.</summary>
    private void FollowUp(ref Transaction tx)
    {
        if (tx.Status != TransactionStatus.Unknown) throw new InvalidOperationException($"logic: follow-up of {tx.Id} in {tx.Status}");
        if (tx.IsDebit && NowUs - tx.UnknownSinceUs >= _rules.ReverseAfterMs * MicrosPerMs)
        {
            tx.Reversing = true;
        }
        Bank bank = _banks[tx.BankIndex];
        int endpointIndex = Routing.PickFollowUpEndpoint(bank, tx.EndpointIndex, tx.FollowUps + 1);
        tx.FollowUps++;
        if (endpointIndex >= 0)
        {
            EmitBankRequest(ref tx, tx.Reversing ? BankOperation.Reverse : BankOperation.Query, endpointIndex, tx.FollowUps);
        }
        // Bounded exponential back-off: initial × 2^n, capped.
        int shift = Math.Min(tx.FollowUps, 20);
        long delayMs = Math.Min((long)_rules.QueryBackoffInitialMs << shift, _rules.QueryBackoffMaxMs);
        _timers.ArmFollowUp(ref tx, NowUs + delayMs * MicrosPerMs);
    }

    /// <summary>The deadline the bank is sent with the first request, and the moment the logic calls the outcome unknown:
    /// one instant from the event stamp, whenever the request actually leaves.</summary>
    private long BankDeadlineUs(ref Transaction tx) => tx.DispatchedUs + _rules.BankTimeoutMs * MicrosPerMs;

    /// <summary>The first request carries the transaction's deadline; a query or reversal gets a deadline of its own.</summary>
    private void EmitBankRequest(ref Transaction tx, BankOperation operation, int endpointIndex, int attempt) =>
        _out.BankRequest(ref tx, operation, endpointIndex, attempt,
            operation is BankOperation.Debit or BankOperation.Credit ? BankDeadlineUs(ref tx) : NowUs + _rules.BankTimeoutMs * MicrosPerMs);

    /// <summary>The calendar day (in the configured zone) an instant falls on, for daily limits.</summary>
    private int DayOf(long timeUs)
    {
        long localUs = timeUs + _rules.DayUtcOffsetHours * 3_600_000_000L;
        return (int)(localUs >= 0 ? localUs / MicrosPerDay : (localUs - MicrosPerDay + 1) / MicrosPerDay);
    }

    // ---------------------------------------------------------------- operator commands

    private void OnSetEndpointWeights(ref InputEvent e)
    {
        Refusal refusal = CheckBankCommand(ref e, out Bank? bank);
        if (!refusal.Refused)
        {
            refusal = RequestChecks.Weights(ref e, bank!);
        }
        if (refusal.Refused)
        {
            _out.RejectCommand(ref e, refusal);
            return;
        }
        _out.AcceptCommand(ref e, bank!, _endpoints.SetWeights(ref e, bank!, NowUs));
    }

    private void OnSetEndpointState(ref InputEvent e)
    {
        Refusal refusal = CheckBankCommand(ref e, out Bank? bank);
        if (!refusal.Refused)
        {
            refusal = RequestChecks.EndpointState(ref e, bank!);
        }
        if (refusal.Refused)
        {
            _out.RejectCommand(ref e, refusal);
            return;
        }
        _out.AcceptCommand(ref e, bank!, _endpoints.SetState(ref e, bank!));
    }

    /// <summary>An operator command about a bank: who and why, then the bank.</summary>
    private Refusal CheckBankCommand(ref InputEvent e, out Bank? bank)
    {
        bank = null;
        Refusal refusal = RequestChecks.Actor(ref e, noteRequired: true);
        return refusal.Refused ? refusal : RequestChecks.CommandBank(ref e, _banksByCode, out bank);
    }

    private void OnEndpointReachability(ref InputEvent e)
    {
        int code = e.BankRef.IsOverlong ? -1 : FieldRules.NormaliseBankCode(e.BankRef.Span);
        Bank? bank = code < 0 ? null : _banksByCode[code];
        if (bank is null || e.EndpointIndex < 0 || e.EndpointIndex >= bank.Endpoints.Length)
        {
            // The connector is built from the same configuration; a stray report must not stop the engine.
            IgnoredReachabilityReports++;
            return;
        }
        _endpoints.SetReachable(ref e, bank);
    }

    // ---------------------------------------------------------------- clearing batches

    private void OnCloseBatch(ref InputEvent e)
    {
        // The operator's identity goes into the batch record: required, printable, bounded.
        // The note is optional here (a close needs no reason beyond the operator's); checked when given.
        Refusal refusal = RequestChecks.Actor(ref e, noteRequired: false);
        if (refusal.Refused)
        {
            _out.RejectCommand(ref e, refusal);
            return;
        }
        long closedId = OpenBatchId;
        long auditNo = CloseBatch(e.CorrelationId, in e.Operator, in e.Operator, in e.Note);
        _out.BatchCloseAccepted(e.CorrelationId, closedId, auditNo);
    }

    /// <summary>Closes the open batch (see <see cref="ClearingBook.Close"/>) and audits it; returns the audit number.</summary>
    private long CloseBatch(long correlationId, in Text32 closedBy, in Text32 auditOperator, in Text64 note)
    {
        long batchId = _book.Close(_out, NowUs, correlationId, in closedBy);
        return _out.Audit(AuditKind.BatchClosed, null, -1, in auditOperator, in note, batchId);
    }
}

/// <summary>A bank answer that contradicted a final outcome: kept for the operators, never applied.</summary>
public readonly record struct Discrepancy(long TransactionId, TransactionStatus Final, TransactionStatus Reported, string Reason, long AtUs);
