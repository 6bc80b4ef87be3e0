using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>A seeded guest workload: a host with vfio-pci GPUs and NICs (several BARs), a
/// vfio-platform device, a Grace Hopper GPU (nvgrace-gpu: its cacheable usemem, which 6.17 maps
/// Normal-WB with FWB and DIC and refuses without, and its write-combined resmem) and RAM, several VMs
/// mapping all of it, and rounds in which every vCPU makes
/// one access at once while, now and then, a device's memory is disabled or re-enabled or it is
/// reset. Every random choice comes from the seed; a round waits for all its accesses.</summary>
public sealed class SeededWorkload
{
    private const ulong MiB = 1UL << 20;
    private const ulong RamGpa = 0x4000_0000UL;
    private const ulong RamSize = 64 * MiB;
    private readonly Random _rng;
    private readonly SimHost _host;
    private readonly int _vms;
    private readonly int _vcpus;
    private readonly List<(ulong Gpa, ulong Size, string? Device)> _windows = [];
    private readonly HashSet<string> _disabled = [];
    /// <summary>nic0's BAR is mapped MAP_FIXED here, so munmap/mmap churn (and a resumed run) find it.</summary>
    public const ulong NicHva = 0x7e00_0000_0000UL;
    private const ulong NicSize = 1 * MiB;

    /// <summary>The device mappings: device, region, size, fixed hva (or null: placed by the mm).</summary>
    private static readonly (string Device, int Region, ulong Size, ulong? Hva)[] Mappings =
    [
        ("gpu0", 0, 16 * MiB, null), ("gpu0", 2, 2 * MiB, null), ("gpu0", 4, 64 * 1024UL, null), ("nic0", 0, NicSize, NicHva), ("plat0", 0, 64 * 1024UL, null),
        ("gh0", VfioRegionIndex.NvgraceUsemem, 16 * MiB, null), ("gh0", VfioRegionIndex.NvgraceResmem, 2 * MiB, null),
    ];

    /// <summary>Guest-physical windows: RAM, then each mapping at its own 2 MiB-aligned GPA.</summary>
    private static List<(ulong Gpa, ulong Size, string? Device)> Windows()
    {
        var windows = new List<(ulong, ulong, string?)> { (RamGpa, RamSize, null) };
        var gpa = 0x80_0000_0000UL;
        foreach (var m in Mappings)
        {
            windows.Add((gpa, PageGeometry.PageAlign(m.Size), m.Device));
            gpa += Math.Max(m.Size, 2 * MiB) * 2;
        }
        return windows;
    }

    public long Accesses { get; private set; }
    public Dictionary<FaultResult, long> Results { get; } = [];
    private readonly Lock _counting = new();
    // Each answered access's latency, in Stopwatch ticks: since the last Counted(), and since the start.
    private readonly HdrHistogram.LongHistogram _latency = VcpuSequenceDone.NewLatencyHistogram();
    private readonly HdrHistogram.LongHistogram _totalLatency = VcpuSequenceDone.NewLatencyHistogram();

    /// <summary>The accesses answered so far and their outcomes, as one copy, and their latency (an
    /// access's time from its round's start, when every access of the round is sent, to its answer: the
    /// wall clock's, for watching a run; no event carries it) since the last call and since the start.
    /// Safe to call from another thread while a round runs (run's progress reports during a round that
    /// waits on the database).</summary>
    public (long Accesses, Dictionary<FaultResult, long> Results, AccessLatency Latency, AccessLatency TotalLatency) Counted()
    {
        lock (_counting)
        {
            var interval = AccessLatency.Of(_latency);
            _latency.Reset();
            return (Accesses, new Dictionary<FaultResult, long>(Results), interval, AccessLatency.Of(_totalLatency));
        }
    }

    private SeededWorkload(SimHost host, int seed, int vms, int vcpus)
    {
        _host = host;
        _rng = new Random(seed);
        _vms = vms;
        _vcpus = vcpus;
    }

    public static IReadOnlyList<VfioDevice> Devices() =>
    [
        DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, true), new RegionSpec(2, 2 * MiB, BarType.Mem64, true), new RegionSpec(4, 64 * 1024, BarType.Mem32, false)]),
        DeviceLayout.Build("nic0", VfioDriver.VfioPci, 1, [new RegionSpec(0, 1 * MiB, BarType.Mem64, false), new RegionSpec(2, 256, BarType.Io, false)]),
        DeviceLayout.Build("plat0", VfioDriver.VfioPlatform, 0, [new RegionSpec(0, 64 * 1024, BarType.Mem32, false)]),
        DeviceLayout.Build("gh0", VfioDriver.NvgraceGpu, 0, [new RegionSpec(VfioRegionIndex.NvgraceUsemem, 16 * MiB, BarType.Mem64, true), new RegionSpec(VfioRegionIndex.NvgraceResmem, 2 * MiB, BarType.Mem64, true)]),
    ];

    public static IReadOnlyList<KvmVm> Vms(int count) => Enumerable.Range(1, count).Select(i => KvmVm.Create($"vm{i}")).ToArray();

    /// <summary>Maps RAM and every device region into every VM.</summary>
    public static async Task<SeededWorkload> SetUpAsync(SimHost host, int seed, int vms, int vcpus)
    {
        var w = new SeededWorkload(host, seed, vms, vcpus);
        w._windows.AddRange(Windows());
        var hvas = new List<ulong>();
        foreach (var m in Mappings)
        {
            var r = await host.Ask<VfioMmapResult>(host.Device(m.Device), new VfioMmapRegion(m.Region, 0, m.Size, true, Prot.Read | Prot.Write, m.Hva));
            if (r.Errno != Errno.None) throw new InvalidOperationException($"workload mmap {m.Device}/{m.Region}: -{r.Errno}");
            hvas.Add(r.Hva);
        }
        for (var v = 1; v <= vms; v++)
        {
            var vm = host.Vm($"vm{v}");
            var ram = await host.Ask<MmResult>(host.Mm, new MmMapRam(RamSize, null));
            await host.Ask<KvmResult>(vm, new KvmSetMemslot(0, MemslotFlags.None, RamGpa, RamSize, ram.Hva));
            for (var i = 0; i < Mappings.Length; i++)
                await host.Ask<KvmResult>(vm, new KvmSetMemslot(i + 1, MemslotFlags.None, w._windows[i + 1].Gpa, w._windows[i + 1].Size, hvas[i]));
        }
        return w;
    }

    /// <summary>Continues a run whose actors recovered from the journal: the mappings and memslots are
    /// there already (nic0 is mapped again if a churn was cut off in the middle).</summary>
    public static async Task<SeededWorkload> ResumeAsync(SimHost host, int seed, int vms, int vcpus)
    {
        var w = new SeededWorkload(host, seed, vms, vcpus);
        w._windows.AddRange(Windows());
        var mm = await host.Ask<MmVmas>(host.Mm, new MmGetVmas(NicHva, NicHva + NicSize));
        if (mm.Vmas.Length == 0)
            await host.Ask<VfioMmapResult>(host.Device("nic0"), new VfioMmapRegion(0, 0, NicSize, true, Prot.Read | Prot.Write, NicHva));
        return w;
    }

    /// <summary>One round: every vCPU of every VM makes one access, all at once; sometimes a device
    /// state change runs concurrently with them. The choices are made here, from the seed; a driver
    /// actor sends them all from inside the actor system, so in deterministic mode the interleaving
    /// does not depend on when this thread gets to run.</summary>
    public async Task RoundAsync()
    {
        var accesses = new List<(IActorRef Vcpu, VcpuRunAccess Access)>();
        for (var v = 1; v <= _vms; v++)
            for (var c = 0; c < _vcpus; c++)
            {
                var (g, size, _) = _windows[_rng.Next(_windows.Count)];
                var gpa = g + (ulong)_rng.NextInt64((long)(size / PageGeometry.PageSize)) * PageGeometry.PageSize;
                var op = _rng.Next(50) == 0 ? AccessOp.Exec : _rng.Next(3) == 0 ? AccessOp.Write : AccessOp.Read;
                accesses.Add((_host.Vcpu($"vm{v}", c), new VcpuRunAccess(gpa, op)));
            }
        (IActorRef, object)? change = null;
        RoundDriver.Churn? churn = null;
        if (_rng.Next(40) == 0)
        {
            // munmap/mmap churn: nic0's BAR goes away (MMU notifier) and comes back at the same hva.
            churn = new RoundDriver.Churn(_host.Mm, NicHva, NicSize, _host.Device("nic0"));
        }
        else if (_rng.Next(20) == 0)
        {
            var dev = _rng.Next(2) == 0 ? "gpu0" : "nic0";
            object msg = _disabled.Contains(dev) ? new VfioSetMemory(true) : _rng.Next(2) == 0 ? new VfioSetMemory(false) : new VfioReset();
            if (msg is VfioSetMemory m) { if (m.Enabled) _disabled.Remove(dev); else _disabled.Add(dev); }
            change = (_host.Device(dev), msg);
        }
        _driver ??= _host.System.ActorOf(ActorProps.Of(() => new RoundDriver()));
        var done = await _driver.Ask<RoundDriver.Done>(new RoundDriver.Run([.. accesses], change, churn), _host.Timeout);
        lock (_counting)
        {
            foreach (var r in done.Results)
            {
                Accesses++;
                Results[r.Result.Outcome.Result] = Results.GetValueOrDefault(r.Result.Outcome.Result) + 1;
            }
            foreach (var ticks in done.LatencyTicks)
            {
                var t = Math.Clamp(ticks, 1, VcpuSequenceDone.MaxLatencyTicks);
                _latency.RecordValue(t);
                _totalLatency.RecordValue(t);
            }
        }
    }

    private IActorRef? _driver;

    /// <summary>Sends a round's messages and collects the replies.</summary>
    private sealed class RoundDriver : ReceiveActor
    {
        public sealed record Run((IActorRef Vcpu, VcpuRunAccess Access)[] Accesses, (IActorRef Device, object Message)? Change, Churn? Churn);
        public sealed record Churn(IActorRef Mm, ulong Hva, ulong Size, IActorRef Vfio);
        private Churn? _churn;
        /// <param name="LatencyTicks">Each result's time from the round's start to its answer (Stopwatch ticks).</param>
        public sealed record Done(VcpuAccessDone[] Results, long[] LatencyTicks);

        private IActorRef _replyTo = ActorRefs.Nobody;
        private readonly List<VcpuAccessDone> _results = [];
        private readonly List<long> _latencies = [];
        private long _started;
        private int _waiting;

        public RoundDriver()
        {
            Receive<Run>(r =>
            {
                SimClock.Advance(Context.System, SimClock.RoundDuration); // in this turn: see SimClock.Advance
                _replyTo = Sender;
                _results.Clear();
                _latencies.Clear();
                _started = System.Diagnostics.Stopwatch.GetTimestamp();
                _waiting = r.Accesses.Length + (r.Change is null ? 0 : 1) + (r.Churn is null ? 0 : 1);
                _churn = r.Churn;
                foreach (var (vcpu, access) in r.Accesses) vcpu.Tell(access);
                if (r.Change is { } c) c.Device.Tell(c.Message);
                if (r.Churn is { } ch) ch.Mm.Tell(new MmMunmap(ch.Hva, ch.Size));
                if (_waiting == 0) _replyTo.Tell(new Done([], []));
            });
            Receive<VcpuAccessDone>(d =>
            {
                _results.Add(d);
                _latencies.Add(System.Diagnostics.Stopwatch.GetTimestamp() - _started);
                Finish();
            });
            Receive<VfioResult>(_ => Finish());
            Receive<MmResult>(_ =>
            {
                if (_churn is { } ch) ch.Vfio.Tell(new VfioMmapRegion(0, 0, ch.Size, true, Prot.Read | Prot.Write, ch.Hva));
            });
            Receive<VfioMmapResult>(_ => Finish());
        }

        private void Finish()
        {
            if (--_waiting == 0) _replyTo.Tell(new Done([.. _results], [.. _latencies]));
        }
    }
}

/// <summary>Guest accesses' latency in a window of a run (<see cref="SeededWorkload.Counted"/>):
/// how many, and their median, 99th percentile and longest, in microseconds (0 when none).</summary>
public sealed record AccessLatency(long Count, double P50Us, double P99Us, double MaxUs)
{
    public static AccessLatency Of(HdrHistogram.LongHistogram h)
    {
        if (h.TotalCount == 0) return new(0, 0, 0, 0);
        double Us(long ticks) => ticks * 1e6 / System.Diagnostics.Stopwatch.Frequency;
        return new(h.TotalCount, Us(h.GetValueAtPercentile(50)), Us(h.GetValueAtPercentile(99)), Us(h.GetValueAtPercentile(100)));
    }
}
