using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;
using Akka.Actor;

namespace ActorSim.Actors.Scenarios;

/// <summary>One line of a scenario run: an expectation (or a step that could not run) and whether it held.
/// <see cref="Text"/> is what was expected and, after " — ", what was found instead.</summary>
public sealed record ExpectationResult(int Step, int Line, bool Passed, string Text)
{
    /// <summary>What was expected, without anything observed: the same from run to run and from kernel
    /// to kernel (a JUnit report's case name). The text before " — ", unless the runner gave it.</summary>
    public string Expected
    {
        get => _expected ?? (Text.IndexOf(" — ", StringComparison.Ordinal) is var i and >= 0 ? Text[..i] : Text);
        init => _expected = value;
    }

    private readonly string? _expected;

    public override string ToString() => $"{(Passed ? "pass" : "FAIL")} step {Step} (line {Line}): {Text}";
}

public sealed record ScenarioRunResult(Scenario Scenario, IReadOnlyList<ExpectationResult> Results, IReadOnlyList<DomainEventPublished> Events)
{
    public bool Passed => Results.All(r => r.Passed);
}

/// <summary>Runs a scenario through the actors (and whatever journal the actor system is configured
/// with), step by step, waiting for each step's reply before the next.</summary>
public sealed class ScenarioRunner
{
    private readonly Scenario _s;
    private readonly SimHost _host;
    private readonly List<ExpectationResult> _results = [];
    private readonly Dictionary<string, (ulong Hva, ulong Size, Errno Errno)> _mappings = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, int), Errno> _memslots = [];
    private AccessResult? _lastAccess;
    private MemType _lastS1 = MemType.NormalWB;
    private Errno _lastStepErrno;

    private ScenarioRunner(Scenario s, SimHost host)
    {
        _s = s;
        _host = host;
    }

    /// <summary>Runs <paramref name="s"/> in a new actor system (in-memory journal) and returns every
    /// expectation line and the events in the order they were persisted.</summary>
    public static Task<ScenarioRunResult> RunAsync(Scenario s, bool deterministic = false, Action<ExpectationResult>? onLine = null) =>
        RunAsync(s, journal: null, runId: s.Name, deterministic, onLine);

    /// <param name="journal">Configuration of the journal (e.g. the Marten one) over the in-memory default.</param>
    public static async Task<ScenarioRunResult> RunAsync(Scenario s, Akka.Configuration.Config? journal, string runId, bool deterministic = false, Action<ExpectationResult>? onLine = null)
    {
        var config = SimHost.BaseConfig(deterministic);
        if (journal is not null) config = journal.WithFallback(config);
        using var system = ActorSystem.Create("actorsim", config);
        var result = await RunRecordedAsync(system, s, runId, onLine);
        await system.Terminate();
        return result;
    }

    /// <summary>Runs <paramref name="s"/> in an actor system the caller made and stops (the host's, under
    /// Akka.Hosting), configured from <see cref="SimHost.BaseConfig"/> and a journal, and returns every
    /// expectation line and the events in the order they were persisted.</summary>
    public static async Task<ScenarioRunResult> RunRecordedAsync(ActorSystem system, Scenario s, string runId, Action<ExpectationResult>? onLine = null,
        SimHostOptions? options = null)
    {
        var recorder = system.ActorOf(ActorProps.Of(() => new EventRecorder()), $"recorder-{Uri.EscapeDataString(runId)}");
        await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get(), TimeSpan.FromSeconds(10));
        var results = await RunAsync(system, s, runId, onLine, options);
        var events = await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get(), TimeSpan.FromSeconds(10));
        system.Stop(recorder);
        return new ScenarioRunResult(s, results, events.Items);
    }

    /// <param name="options">The actors' options (the asks' timeout: the host's is past its outage limit).</param>
    public static async Task<IReadOnlyList<ExpectationResult>> RunAsync(ActorSystem system, Scenario s, string runId, Action<ExpectationResult>? onLine = null,
        SimHostOptions? options = null)
    {
        var ordinals = new Dictionary<VfioDriver, int>();
        var devices = s.Devices.Select(d =>
        {
            ordinals[d.Driver] = ordinals.GetValueOrDefault(d.Driver) + 1;
            return DeviceLayout.Build(d.Name, d.Driver, ordinals[d.Driver] - 1, d.Regions);
        }).ToArray();
        var vms = s.Vms.Select(v => v.Create()).ToArray();
        var host = await SimHost.StartAsync(system, runId, s.Policy, devices, vms, (options ?? new SimHostOptions()) with { SystemSupportsMte = s.CpuMte });
        var runner = new ScenarioRunner(s, host);
        await runner.SetUpRam(onLine);
        // Each step takes SimClock.RoundDuration of virtual time (deterministic mode; the wall clock
        // moves by itself), moved in an actor's turn so it falls among the events at the same point.
        var clock = system.Scheduler is VirtualClockScheduler ? system.ActorOf(ActorProps.Of(() => new SimClock.Advancer())) : null;
        foreach (var step in s.Steps)
        {
            if (clock is not null) await host.Ask<SimClock.Advancer.Advanced>(clock, new SimClock.Advancer.Advance(SimClock.RoundDuration));
            var before = runner._results.Count;
            await runner.Run(step);
            for (var i = before; i < runner._results.Count; i++) onLine?.Invoke(runner._results[i]);
        }
        return runner._results;
    }

    private async Task SetUpRam(Action<ExpectationResult>? onLine)
    {
        foreach (var v in _s.Vms.Where(v => v.HasRam))
        {
            var map = await _host.Ask<MmResult>(_host.Mm, new MmMapRam(v.RamSize, null));
            var err = map.Errno != Errno.None ? map.Errno
                : (await _host.Ask<KvmResult>(_host.Vm(v.Name), new KvmSetMemslot(0, MemslotFlags.None, v.RamGpa, v.RamSize, map.Hva))).Errno;
            if (err != Errno.None)
            {
                var r = new ExpectationResult(0, v.Line, false, $"vm {v.Name}: RAM memslot failed with -{err}");
                _results.Add(r);
                onLine?.Invoke(r);
            }
        }
    }

    private void Result(Step step, bool ok, string text) => _results.Add(new ExpectationResult(step.Number, step.Line, ok, text));

    private void Result(Step step, bool ok, string text, string expected) =>
        _results.Add(new ExpectationResult(step.Number, step.Line, ok, text) { Expected = expected });

    private bool Mapping(Step step, string name, out (ulong Hva, ulong Size, Errno Errno) m)
    {
        m = _mappings[name];
        if (m.Errno == Errno.None) return true;
        Result(step, false, $"mapping '{name}' was not created (mmap failed with -{m.Errno})");
        return false;
    }

    private async Task Run(Step step)
    {
        switch (step)
        {
            case MmapStep m:
            {
                var r = await _host.Ask<VfioMmapResult>(_host.Device(m.Device), new VfioMmapRegion(m.Region, m.Offset, m.Size, m.Shared, m.Prot, m.Hva));
                _mappings[m.Name] = (r.Hva, PageGeometry.PageAlign(m.Size), r.Errno);
                _lastStepErrno = r.Errno;
                break;
            }
            case MemslotStep m:
            {
                ulong hva;
                if (m.Backing == "ram")
                {
                    var map = await _host.Ask<MmResult>(_host.Mm, new MmMapRam(m.Size, null));
                    if (map.Errno != Errno.None) { _memslots[(m.Vm, m.Slot)] = _lastStepErrno = map.Errno; break; }
                    hva = map.Hva;
                }
                else
                {
                    if (!Mapping(step, m.Backing, out var b)) break;
                    hva = b.Hva;
                }
                var r = await _host.Ask<KvmResult>(_host.Vm(m.Vm), new KvmSetMemslot(m.Slot, m.Flags, m.Gpa, m.Size, hva));
                _memslots[(m.Vm, m.Slot)] = _lastStepErrno = r.Errno;
                break;
            }
            case AccessStep a:
            {
                var vcpu = _host.Vcpu(a.Vm, a.Vcpu);
                var done = await _host.Ask<VcpuAccessDone>(vcpu, new VcpuRunAccess(a.Gpa, a.Op, a.Syndrome));
                // A retry (-EAGAIN) means the guest faults again; the driver re-issues it once.
                if (done.Result.Outcome.Result == FaultResult.Retry && a.Retry)
                    done = await _host.Ask<VcpuAccessDone>(vcpu, new VcpuRunAccess(a.Gpa, a.Op, a.Syndrome));
                _lastAccess = done.Result;
                _lastS1 = a.S1;
                _lastStepErrno = done.Result.Outcome.Errno;
                break;
            }
            case DeviceStep d:
            {
                object msg = d.Memory is { } on ? new VfioSetMemory(on) : d.Reset ? new VfioReset() : new VfioSetPower(d.Power!.Value);
                _lastStepErrno = (await _host.Ask<VfioResult>(_host.Device(d.Device), msg)).Errno;
                break;
            }
            case MunmapStep u:
            {
                if (!Mapping(step, u.Name, out var m)) break;
                var off = u.Offset ?? 0;
                _lastStepErrno = (await _host.Ask<MmResult>(_host.Mm, new MmMunmap(m.Hva + off, u.Size ?? m.Size - off))).Errno;
                break;
            }
            case MprotectStep p:
            {
                if (!Mapping(step, p.Name, out var m)) break;
                var off = p.Offset ?? 0;
                _lastStepErrno = (await _host.Ask<MmResult>(_host.Mm, new MmMprotect(m.Hva + off, p.Size ?? m.Size - off, p.Prot))).Errno;
                break;
            }
            case DeleteMemslotStep d:
                _lastStepErrno = (await _host.Ask<KvmResult>(_host.Vm(d.Vm), new KvmSetMemslot(d.Slot, MemslotFlags.None, 0, 0, 0))).Errno;
                break;
            case VgicV2Step g:
                _lastStepErrno = (await _host.Ask<KvmResult>(_host.Vm(g.Vm), new KvmVgicV2MapResources(g.CpuBase))).Errno;
                break;
            case Expect e:
                await Check(e);
                break;
        }
    }

    private static string ErrnoText(Errno e) => e == Errno.None ? "ok" : e.ToString();

    private async Task Check(Expect e)
    {
        switch (e)
        {
            case ExpectMmap m:
            {
                var got = _mappings[m.Name].Errno;
                Result(e, got == m.Errno, $"mmap {m.Name}: {ErrnoText(m.Errno)}" + (got == m.Errno ? "" : $" — got {ErrnoText(got)}"));
                break;
            }
            case ExpectMemslot m:
            {
                var got = _memslots.TryGetValue((m.Vm, m.Slot), out var x) ? ErrnoText(x) : "never set";
                Result(e, got == ErrnoText(m.Errno), $"memslot {m.Vm}/{m.Slot}: {ErrnoText(m.Errno)}" + (got == ErrnoText(m.Errno) ? "" : $" — got {got}"));
                break;
            }
            case ExpectVma v:
            {
                if (!Mapping(e, v.Name, out var m)) break;
                var vmas = await _host.Ask<MmVmas>(_host.Mm, new MmGetVmas(m.Hva, m.Hva + 1));
                if (vmas.Vmas.Length == 0) { Result(e, false, $"vma {v.Name}: no VMA at 0x{m.Hva:x}"); break; }
                var flags = vmas.Vmas[0].Flags;
                var problems = new List<string>();
                if ((flags & v.Flags) != v.Flags) problems.Add($"missing {string.Join(" ", VmFlagBits.Names(v.Flags & ~flags))}");
                if ((flags & v.NotFlags) != 0) problems.Add($"has {string.Join(" ", VmFlagBits.Names(flags & v.NotFlags))}");
                var smaps = Smaps.VmFlagsLine(flags).TrimEnd();
                if (v.Smaps is { } want && want.Trim() != smaps) problems.Add($"smaps \"{smaps}\"");
                Result(e, problems.Count == 0, $"vma {v.Name}: flags {string.Join(" ", VmFlagBits.Names(v.Flags))}" +
                    (v.NotFlags != 0 ? $", not {string.Join(" ", VmFlagBits.Names(v.NotFlags))}" : "") + (v.Smaps is null ? "" : $", smaps \"{v.Smaps}\"") +
                    (problems.Count == 0 ? "" : " — " + string.Join("; ", problems)));
                break;
            }
            case ExpectAccess a:
            {
                if (_lastAccess is not { } last) { Result(e, false, "access last: there was no access"); break; }
                var o = last.Outcome;
                var result = o.Result is FaultResult.PermissionsRelaxed or FaultResult.AlreadyMapped ? FaultResult.Mapped : o.Result;
                var ok = result == a.Result && (a.Errno is null || a.Errno == o.Errno);
                Result(e, ok, $"access last: {ResultName(a.Result)}{(a.Errno is { } x ? " " + x : "")}" + (ok ? "" : $" — got {ResultName(result)} {(o.Errno == Errno.None ? "" : o.Errno.ToString())} ({o.Path})"));
                break;
            }
            case ExpectStage2 s:
            {
                var leaf = (await _host.Ask<KvmLeaf>(_host.Vm(s.Vm), new KvmGetLeaf(s.Gpa))).Leaf;
                var what = $"{s.Vm} gpa 0x{s.Gpa:x}: s2 {(s.S2 is { } t ? t.Name() : "unmapped")}";
                if (leaf is not { } l)
                {
                    Result(e, s.S2 is null, what + (s.S2 is null ? "" : " — unmapped"));
                    break;
                }
                if (s.S2 is null) { Result(e, false, what + $" — mapped (MemAttr 0x{l.MemAttr:x})"); break; }
                var fwb = _host.Policy.Cpu.Fwb;
                var type = MemAttr.TypeOf(l.MemAttr, fwb) is { } st ? MemAttr.MemTypeOf(st) : (MemType?)null;
                var problems = new List<string>();
                if (type != s.S2) problems.Add($"s2 {type?.Name() ?? "?"}");
                if (s.MemAttr is { } ma) { what += $", memattr 0x{ma:x}"; if (ma != l.MemAttr) problems.Add($"memattr 0x{l.MemAttr:x}"); }
                if (s.Xn is { } xn) { what += $", xn {xn.ToString().ToLowerInvariant()}"; if (xn != !l.Executable) problems.Add($"xn {(!l.Executable).ToString().ToLowerInvariant()}"); }
                if (s.Writable is { } w) { what += $", writable {w.ToString().ToLowerInvariant()}"; if (w != l.Writable) problems.Add($"writable {l.Writable.ToString().ToLowerInvariant()}"); }
                if (s.Effective is { } eff)
                {
                    what += $", effective {eff.Name()} (s1 {_lastS1.Name()})";
                    var got = CombineStages.TryCombine(_lastS1, l.MemAttr, fwb, out var c) ? c.Name() : "reserved";
                    if (got != eff.Name()) problems.Add($"effective {got}");
                }
                Result(e, problems.Count == 0, what + (problems.Count == 0 ? "" : " — got " + string.Join(", ", problems)));
                break;
            }
            case ExpectInvariants:
            {
                var v = await _host.Ask<Violations>(_host.Checker, new GetViolations());
                Result(e, v.Items.Length == 0, $"invariants hold ({v.EventsChecked} events checked)" +
                    (v.Items.Length == 0 ? "" : " — " + string.Join("; ", v.Items.Select(x => $"{x.Violation} at event {x.Seq}"))),
                    "invariants hold"); // the events checked differ from kernel to kernel
                break;
            }
            case ExpectLastStep l:
                Result(e, l.Errno == _lastStepErrno, $"last step: {ErrnoText(l.Errno)}" + (l.Errno == _lastStepErrno ? "" : $" — got {ErrnoText(_lastStepErrno)}"));
                break;
        }
    }

    private static string ResultName(FaultResult r) => r switch
    {
        FaultResult.Mapped => "mapped",
        FaultResult.Retry => "retry",
        FaultResult.GuestAbort => "guest-abort",
        FaultResult.MmioExit => "mmio-exit",
        FaultResult.HwPoisonSigbus => "hwpoison",
        FaultResult.InstructionSkipped => "skipped",
        FaultResult.NisvExit => "nisv-exit",
        _ => "error",
    };
}

/// <summary>Keeps every published domain event in order (what the journal wrote, in global order).</summary>
public sealed class EventRecorder : ReceiveActor
{
    public sealed record Get;
    public sealed record Events(DomainEventPublished[] Items);
    private readonly List<DomainEventPublished> _items = [];

    public EventRecorder()
    {
        Receive<DomainEventPublished>(_items.Add);
        Receive<Get>(_ => Sender.Tell(new Events([.. _items])));
    }

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DomainEventPublished));
}
