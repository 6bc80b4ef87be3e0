using System.Collections.Immutable;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Kernel.PageGeometry;

namespace ActorSim.Domain.Kvm;

/// <summary>A VM as a decider: KVM_SET_USER_MEMORY_REGION, MMU-notifier invalidations, and recording
/// fault decisions.</summary>
public static class KvmVmDecider
{
    /// <summary>KVM_CREATE_VM with type KVM_VM_TYPE_ARM_IPA_SIZE(<paramref name="ipaBits"/>), then, for
    /// <paramref name="mte"/>, KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) before any vCPU exists. The IPA size
    /// (kvm_init_stage2_mmu, arch/arm64/kvm/mmu.c, v6.12): 0 takes KVM_PHYS_SHIFT (40); any other must be
    /// ARM64_MIN_PARANGE_BITS (32) .. kvm_ipa_limit, else -EINVAL. MTE (kvm_vm_ioctl_enable_cap,
    /// arch/arm64/kvm/arm.c): -EINVAL unless system_supports_mte(). The VM, or the errno and which of the
    /// two refused it. With <paramref name="nisvToUser"/>, KVM_ENABLE_CAP(KVM_CAP_ARM_NISV_TO_USER) too, which
    /// kvm_vm_ioctl_enable_cap takes on any host and at any time (it sets
    /// KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER): it refuses nothing.</summary>
    public static (KvmVm? Vm, Errno Errno, bool MteRefused) CreateVm(string name, int ipaBits, bool mte, bool systemSupportsMte, bool nisvToUser = false)
    {
        if (ipaBits == 0) ipaBits = KvmVm.DefaultIpaBits;
        else if (ipaBits > KvmVm.IpaLimit || ipaBits < KvmVm.MinIpaBits) return (null, Errno.EINVAL, false);
        if (mte && !systemSupportsMte) return (null, Errno.EINVAL, true);
        return (KvmVm.Create(name, mte, ipaBits, nisvToUser), Errno.None, false);
    }

    /// <summary>KVM_VGIC_V2_CPU_SIZE: the GICv2 CPU interface a vgic-v2 maps (8 KiB).</summary>
    public const ulong VgicV2CpuSize = 0x2000;

    /// <summary>An in-kernel vgic-v2's CPU interface: KVM_DEV_ARM_VGIC_GRP_ADDR with KVM_VGIC_V2_ADDR_TYPE_CPU
    /// (kvm_vgic_addr → vgic_check_iorange, arch/arm64/kvm/vgic/vgic-kvm-device.c, in its order: -EEXIST once
    /// set, -EINVAL unless 4 KiB aligned, -E2BIG past the VM's IPA space), then at the first KVM_RUN
    /// vgic_v2_map_resources: kvm_phys_addr_ioremap(kvm, cpu base, kvm_vgic_global_state.vcpu_base,
    /// KVM_VGIC_V2_CPU_SIZE, true), which maps the host's GICV (<see cref="PhysMap.GicvBase"/>) into the
    /// guest's GICC. Not modelled: a host that traps the CPU interface instead (vgic_v2_cpuif_trap), the
    /// distributor and its overlap check.</summary>
    public static Decision VgicV2MapResources(KvmVm vm, KernelPolicy policy, ulong cpuBase)
    {
        if (vm.IoRemaps is { Count: > 0 }) return Decision.Fail(Errno.EEXIST);
        if (!IsPageAligned(cpuBase)) return Decision.Fail(Errno.EINVAL);
        if (cpuBase + VgicV2CpuSize < cpuBase) return Decision.Fail(Errno.EINVAL);
        if (vm.IpaBits < 64 && ((cpuBase >> vm.IpaBits) != 0 || cpuBase + VgicV2CpuSize > 1UL << vm.IpaBits)) return Decision.Fail(Errno.E2BIG);
        return PhysAddrIoremap(vm, policy, cpuBase, PhysMap.GicvBase, VgicV2CpuSize, writable: true);
    }

    /// <summary>kvm_phys_addr_ioremap (arch/arm64/kvm/mmu.c, v6.12): KVM maps device memory at stage 2 itself,
    /// page by page, with KVM_PGTABLE_PROT_DEVICE | R (| W) — Device-nGnRE whatever the kernel, the CPU's FWB
    /// or any VMA flag: no VMA, memslot or user_mem_abort is involved, so VM_ALLOW_ANY_UNCACHED never
    /// reaches it (8c47ce3e1d2c changed user_mem_abort only). A leaf already there is replaced
    /// (kvm_pgtable_stage2_map, break-before-make).</summary>
    public static Decision PhysAddrIoremap(KvmVm vm, KernelPolicy policy, ulong guestIpa, ulong pa, ulong size, bool writable)
    {
        var prot = KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE | KvmPgtableProt.KVM_PGTABLE_PROT_R | (writable ? KvmPgtableProt.KVM_PGTABLE_PROT_W : 0);
        var err = Stage2SetProtAttr.Compute(prot, policy.RuleSet, policy.Cpu.Fwb, out var attr);
        if (err != Errno.None) return Decision.Fail(err);
        size += guestIpa & (PageSize - 1); // size += offset_in_page(guest_ipa); guest_ipa &= PAGE_MASK
        guestIpa = AlignDown(guestIpa, PageSize);
        var leaves = ImmutableArray.CreateBuilder<Stage2Leaf>();
        var next = pa;
        for (var addr = guestIpa; addr < guestIpa + size; addr += PageSize, next += PageSize)
            leaves.Add(new Stage2Leaf(addr, 3, prot, Stage2Descriptor.Encode(next >> PageShift, 3, attr)));
        return Decision.Ok(new Stage2DeviceIoremapped(vm.Name, guestIpa, pa, leaves.ToImmutable()));
    }

    /// <summary>__kvm_set_memory_region (virt/kvm/kvm_main.c) then kvm_arch_prepare_memory_region
    /// (arch/arm64/kvm/mmu.c), checks in the kernel's order. <paramref name="vmas"/> are the VMAs that
    /// intersect [hva, hva + size) now.</summary>
    public static Decision SetUserMemoryRegion(KvmVm vm, KernelPolicy policy, int id, MemslotFlags flags, ulong gpa, ulong size, ulong hva, IReadOnlyList<VmaSnapshot> vmas)
    {
        // check_memory_region_flags: arm64 accepts LOG_DIRTY_PAGES and READONLY (no guest_memfd here).
        if ((flags & ~(MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES | MemslotFlags.KVM_MEM_READONLY)) != 0) return Decision.Fail(Errno.EINVAL);
        if (!IsPageAligned(size)) return Decision.Fail(Errno.EINVAL);
        if (!IsPageAligned(gpa)) return Decision.Fail(Errno.EINVAL);
        if (!IsPageAligned(hva) || hva + size > AddressSpace.TaskSize || hva + size < hva) return Decision.Fail(Errno.EINVAL); // access_ok
        if (id < 0 || id >= KvmVm.KvmUserMemSlots) return Decision.Fail(Errno.EINVAL);
        if (gpa + size < gpa) return Decision.Fail(Errno.EINVAL);
        vm.Memslots.TryGetValue(id, out var old);
        if (size == 0)
        {
            if (old is null) return Decision.Fail(Errno.EINVAL);
            return Decision.Ok(new Stage2RangeUnmapped(vm.Name, old.BaseGpa, old.EndGpa), new MemslotDeleted(vm.Name, id));
        }
        MemslotChange change;
        if (old is null) change = MemslotChange.Create;
        else
        {
            if (hva != old.UserspaceAddr || size != old.Size || ((flags ^ old.Flags) & MemslotFlags.KVM_MEM_READONLY) != 0)
                return Decision.Fail(Errno.EINVAL);
            if (gpa != old.BaseGpa) change = MemslotChange.Move;
            else if (flags != old.Flags) change = MemslotChange.FlagsOnly;
            else return Decision.Ok(); // nothing to change
        }
        if (change is MemslotChange.Create or MemslotChange.Move &&
            vm.Memslots.Values.Any(s => s.Id != id && s.BaseGpa < gpa + size && gpa < s.EndGpa))
            return Decision.Fail(Errno.EEXIST);

        // kvm_arch_prepare_memory_region.
        if (((gpa + size) >> PageShift) > ((1UL << vm.IpaBits) >> PageShift)) return Decision.Fail(Errno.EFAULT);
        foreach (var v in vmas)
        {
            if (vm.HasMte && !v.Flags.Has(VmFlags.VM_MTE_ALLOWED)) return Decision.Fail(Errno.EINVAL);
            if (v.Flags.Has(VmFlags.VM_PFNMAP))
            {
                if (flags.HasFlag(MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES)) return Decision.Fail(Errno.EINVAL);
                // 6.17 (2a8dfab26677): a cacheable PFNMAP VMA needs FWB and DIC.
                if (policy.RuleSet == RuleSet.V6_17 && v.S1.IsCacheable() && !policy.SupportsCacheablePfnmap)
                    return Decision.Fail(Errno.EINVAL);
            }
        }
        var slot = new Memslot(id, gpa, size, hva, flags);
        var events = new List<IDomainEvent>();
        if (change == MemslotChange.Move) events.Add(new Stage2RangeUnmapped(vm.Name, old!.BaseGpa, old.EndGpa));
        events.Add(new MemslotSet(vm.Name, slot, change, [.. vmas]));
        return Decision.Ok(events);
    }

    /// <summary>kvm_mmu_notifier_invalidate_range_start: if a memslot overlaps the hva range,
    /// in_progress++ and unmap the matching IPA ranges; else nothing.</summary>
    public static Decision InvalidateRangeStart(KvmVm vm, ulong start, ulong end)
    {
        var slots = vm.Memslots.Values.Where(s => s.OverlapsHva(start, end)).ToArray();
        if (slots.Length == 0) return Decision.Ok();
        var events = new List<IDomainEvent> { new MmuInvalidateBegan(vm.Name, start, end) };
        foreach (var s in slots)
        {
            var hs = Math.Max(start, s.UserspaceAddr);
            var he = Math.Min(end, s.UserspaceAddr + s.Size);
            events.Add(new Stage2RangeUnmapped(vm.Name, s.BaseGpa + (hs - s.UserspaceAddr), s.BaseGpa + (he - s.UserspaceAddr)));
        }
        return Decision.Ok(events);
    }

    /// <summary>kvm_mmu_notifier_invalidate_range_end: seq++ then in_progress-- when a slot overlaps.</summary>
    public static Decision InvalidateRangeEnd(KvmVm vm, ulong start, ulong end) =>
        vm.Memslots.Values.Any(s => s.OverlapsHva(start, end)) && vm.MmuInvalidateInProgress > 0
            ? Decision.Ok(new MmuInvalidateEnded(vm.Name, start, end))
            : Decision.Ok();

    public static KvmVm Evolve(KvmVm vm, IDomainEvent e) => Evolve(vm, e, null);

    /// <summary>Evolve with an <paramref name="edit"/> the caller keeps across events (see
    /// <see cref="Stage2Edit"/>): the stage-2 nodes that edit made are changed in place, so only the VM
    /// returned is valid afterwards, not <paramref name="vm"/>. Without one, nothing is changed in place.</summary>
    public static KvmVm Evolve(KvmVm vm, IDomainEvent e, Stage2Edit? edit) => e switch
    {
        MemslotSet m when m.Vm == vm.Name => vm with { Memslots = vm.Memslots.SetItem(m.Slot.Id, m.Slot) },
        MemslotDeleted d when d.Vm == vm.Name => vm with { Memslots = vm.Memslots.Remove(d.Id) },
        Stage2RangeUnmapped u when u.Vm == vm.Name => vm with { Stage2 = vm.Stage2.Unmap(u.Gpa, u.End, edit) },
        Stage2DeviceIoremapped r when r.Vm == vm.Name => Ioremapped(vm, r, edit),
        MmuInvalidateBegan b when b.Vm == vm.Name => vm with { MmuInvalidateInProgress = vm.MmuInvalidateInProgress + 1 },
        MmuInvalidateEnded x when x.Vm == vm.Name => vm with
        {
            MmuInvalidateSeq = vm.MmuInvalidateSeq + 1,
            MmuInvalidateInProgress = vm.MmuInvalidateInProgress - 1,
        },
        Stage2FaultResolved f => Resolved(vm, f.Decision, edit),
        Stage2FaultsResolved b => ResolvedAll(vm, b.Decisions, edit),
        _ => vm,
    };

    private static KvmVm Ioremapped(KvmVm vm, Stage2DeviceIoremapped r, Stage2Edit? edit)
    {
        var stage2 = vm.Stage2;
        foreach (var leaf in r.Leaves) stage2 = stage2.Install(leaf, edit);
        return vm with { Stage2 = stage2, IoRemaps = (vm.IoRemaps ?? []).Add(new IoRemap(r.Gpa, r.End, r.Pa)) };
    }

    /// <summary>The VM after one decision: its leaf installed if it mapped or relaxed one. Decisions of
    /// one batch may share an <paramref name="edit"/> (see <see cref="Stage2Table"/>): then only the
    /// VM after the last of them is valid.</summary>
    public static KvmVm Resolved(KvmVm vm, DecisionRecord d, Stage2Edit? edit = null)
    {
        if (d.Inputs.Vm != vm.Name || d.Outcome is not { Result: FaultResult.Mapped or FaultResult.PermissionsRelaxed, Leaf: { } leaf })
            return vm;
        var stage2 = vm.Stage2.Install(leaf, edit);
        // The table changed in place (nodes the edit made): the same VM, as valid as a copy would be.
        return ReferenceEquals(stage2, vm.Stage2) ? vm : vm with { Stage2 = stage2 };
    }

    /// <summary>The VM after a batch's decisions, in order, with one edit: each stage-2 node is copied
    /// at most once per batch. Without an <paramref name="edit"/> the VM it started from is unchanged;
    /// with the caller's, as <see cref="Evolve(KvmVm, IDomainEvent, Stage2Edit?)"/>.</summary>
    public static KvmVm ResolvedAll(KvmVm vm, IReadOnlyList<DecisionRecord> decisions, Stage2Edit? edit = null)
    {
        edit ??= new Stage2Edit();
        for (var i = 0; i < decisions.Count; i++) vm = Resolved(vm, decisions[i], edit);
        return vm;
    }
}
