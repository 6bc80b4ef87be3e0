using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Kernel.PageGeometry;

namespace ActorSim.Domain.Kvm;

/// <summary><c>kvm_handle_guest_abort()</c> (arch/arm64/kvm/mmu.c; kernel-model.md §3.1): the front
/// checks, then <see cref="UserMemAbort"/>. This is the one decision function that actors, replay and
/// the CLI call.</summary>
public static class KvmHandleGuestAbort
{
    public static FaultOutcome Decide(FaultInputs i)
    {
        // Step 2: IPA beyond the VM's IPA space -> inject an (address size) abort, return 1.
        if (i.IpaBits < 64 && i.Gpa >= 1UL << i.IpaBits)
            return new(FaultResult.GuestAbort, Errno.None, null, default, DecisionPath.IpaOutOfRange);
        // Step 4 (v6.12): no memslot, or a write fault on a read-only one. The guest put its
        // instructions or its page tables where it should not: an instruction abort gives -ENOEXEC (an
        // injected abort); a stage-1 walk's abort injects a data abort; a cache maintenance instruction
        // with no memslot is skipped; any other data abort goes to io_mem_abort, which exits to the VMM
        // (KVM_EXIT_MMIO) when the syndrome is valid; when it is not, KVM_RUN fails with -ENOSYS
        // (page_fault_test: cas, dc_zva, st_preidx on a read-only slot), or, on a VM with
        // KVM_CAP_ARM_NISV_TO_USER, exits to the VMM with KVM_EXIT_ARM_NISV.
        var noSlot = i.Slot is null;
        if (noSlot || KvmEmulate.IsWriteFault(i) && i.Slot!.ReadOnly)
        {
            if (i.Op == AccessOp.Exec) // kvm_vcpu_trap_is_iabt: an instruction abort, its walk's too
                return new(FaultResult.GuestAbort, Errno.ENOEXEC, null, default, noSlot ? DecisionPath.NoMemslotExec : DecisionPath.ReadOnlySlotWriteExec);
            if (i.S1ptw) // kvm_vcpu_abt_iss1tw
                return new(FaultResult.GuestAbort, Errno.None, null, default, DecisionPath.S1ptwInjectDabt);
            if (noSlot && i.Cm) // kvm_vcpu_dabt_is_cm: "this range cannot be cached", skip it
                return new(FaultResult.InstructionSkipped, Errno.None, null, default, DecisionPath.CacheMaintenanceSkipped);
            return IoMemAbort(i, noSlot ? DecisionPath.NoMemslotMmio : DecisionPath.ReadOnlySlotWriteMmio);
        }
        // Steps 6-7: user_mem_abort; -ENOEXEC becomes an injected abort, -EAGAIN a re-fault.
        return UserMemAbort.Decide(i);
    }

    /// <summary>io_mem_abort (arch/arm64/kvm/mmio.c): with a valid syndrome, an MMIO exit. Without one
    /// there is no access to describe: a VM with KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER
    /// (KVM_CAP_ARM_NISV_TO_USER) exits with KVM_EXIT_ARM_NISV and returns 0, any other VM fails KVM_RUN
    /// with -ENOSYS.</summary>
    private static FaultOutcome IoMemAbort(FaultInputs i, DecisionPath mmio) => i.Nisv
        ? i.NisvToUser
            ? new(FaultResult.NisvExit, Errno.None, null, default, DecisionPath.NisvExitToUser)
            : new(FaultResult.Error, Errno.ENOSYS, null, default, DecisionPath.NoValidSyndrome)
        : new(FaultResult.MmioExit, Errno.None, null, default, mmio);
}

/// <summary><c>user_mem_abort()</c> as an ordered decision list for the 6.8 / 6.9 / 6.17 rule sets
/// (kernel-model.md §3.2–3.3). Pure; reads only its inputs.</summary>
public static class UserMemAbort
{
    public static FaultOutcome Decide(FaultInputs i)
    {
        var write = KvmEmulate.IsWriteFault(i); // write_fault = kvm_is_write_fault(vcpu)
        var exec = KvmEmulate.IsExecFault(i); // exec_fault = kvm_vcpu_trap_is_exec_fault(vcpu)
        var slot = i.Slot!;
        var rules = i.Policy.RuleSet;

        // 1. A read permission fault cannot happen: every leaf KVM installs is readable.
        if (i.FaultIsPerm && !write && !exec) return Fail(Errno.EFAULT, DecisionPath.UnexpectedL2ReadPermission);
        var logging = slot.LoggingActive;
        // 2. Top up the page-table cache unless this is a permission fault that needs no new table.
        if ((!i.FaultIsPerm || (logging && write)) && i.MemcacheTopUpFails) return Fail(Errno.ENOMEM, DecisionPath.MemcacheTopUpFailed);
        // 3. vma_lookup(mm, hva) under mmap_read_lock.
        if (i.Vma is not { } vma) return Fail(Errno.EFAULT, DecisionPath.NoVma);
        // 4. Mapping size from the VMA, clamped to what the memslot can hold.
        var (size, forcePte) = MappingSize(vma, i.Hva, slot);
        var ipa = size > PageSize ? AlignDown(i.Gpa, size) : AlignDown(i.Gpa, PageSize);
        // 5. Sampled from the VMA: VM_ALLOW_ANY_UNCACHED (8c47ce3e1d2c, v6.9), VM_MTE_ALLOWED, and in
        //    6.17 the VMA's flags and cacheability (kvm_vma_is_cacheable, 0c67288e0c8b).
        var vfioAllowAnyUc = rules >= RuleSet.V6_9 && vma.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED);
        var mteAllowed = vma.Flags.Has(VmFlags.VM_MTE_ALLOWED);
        var isVmaCacheable = vma.S1.IsCacheable();
        // 6. mmu_seq = kvm->mmu_invalidate_seq (i.SampledSeq), then mmap_read_unlock.
        // 7. Resolve the pfn of the (block-aligned) gfn.
        if (i.Pfn.Status == PfnStatus.HwPoison)
            return new(FaultResult.HwPoisonSigbus, Errno.None, null, default, DecisionPath.PfnHwPoison);
        if (i.Pfn.Status != PfnStatus.Ok) return Fail(Errno.EFAULT, DecisionPath.PfnError);
        var writable = i.Pfn.Writable && !slot.ReadOnly;

        // 8-9. Memory-type class.
        bool forceNonCacheable; // "device" before 6.17, s2_force_noncacheable from 6.17 (8cc9dc1ae4fb)
        if (rules == RuleSet.V6_17)
        {
            forceNonCacheable = false;
            if (vma.Flags.HasAny(VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP) && !i.Pfn.IsMapMemory)
            {
                if (isVmaCacheable)
                {
                    // 2a8dfab26677 / 0c67288e0c8b: cacheable PFNMAP needs FWB and DIC.
                    if (!i.Policy.SupportsCacheablePfnmap) return Fail(Errno.EFAULT, DecisionPath.CacheablePfnmapUnsupported);
                }
                else
                {
                    forceNonCacheable = true;
                }
            }
            else if (logging && !write)
            {
                writable = false;
            }
        }
        else
        {
            // kvm_is_device_pfn(pfn) = !pfn_is_map_memory(pfn): not derived from VM_PFNMAP.
            forceNonCacheable = !i.Pfn.IsMapMemory;
            if (!forceNonCacheable && logging && !write) writable = false;
        }

        // 10. Exec fault on device / non-cacheable memory: -ENOEXEC before taking mmu_lock.
        if (exec && forceNonCacheable)
            return new(FaultResult.GuestAbort, Errno.ENOEXEC, null, default, DecisionPath.ExecOnDevice);

        // 12. mmu_invalidate_retry(kvm, mmu_seq) under mmu_lock: -EAGAIN -> 0 -> the guest re-faults.
        if (i.InProgressAtLock != 0 || i.SeqAtLock != i.SampledSeq)
            return new(FaultResult.Retry, Errno.None, null, default, DecisionPath.InvalidateRetry);

        // 13. A permission fault on a larger leaf keeps that granule (THP adjustment is not modelled:
        //     anonymous memory is mapped page by page).
        var faultGranule = i.FaultIsPerm ? SizeOfLevel(i.FaultLevel) : PageSize;
        if (size == PageSize && !(forcePte || forceNonCacheable) && i.FaultIsPerm && faultGranule > PageSize)
        {
            size = faultGranule;
            ipa = AlignDown(i.Gpa, size);
        }

        // 14. MTE: a VM with MTE may map cacheable memory only from VM_MTE_ALLOWED VMAs.
        if (i.VmHasMte && !i.FaultIsPerm && !forceNonCacheable && !mteAllowed)
            return Fail(Errno.EFAULT, DecisionPath.MteNotAllowed);

        // 15. prot.
        var prot = KvmPgtableProt.KVM_PGTABLE_PROT_R;
        if (writable) prot |= KvmPgtableProt.KVM_PGTABLE_PROT_W;
        if (exec) prot |= KvmPgtableProt.KVM_PGTABLE_PROT_X;
        if (forceNonCacheable)
            prot |= vfioAllowAnyUc ? KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC : KvmPgtableProt.KVM_PGTABLE_PROT_DEVICE;
        else if (i.Policy.Cpu.Dic)
            prot |= KvmPgtableProt.KVM_PGTABLE_PROT_X;

        // 16. relax_perms for a permission fault at the leaf's granule, else map.
        if (i.FaultIsPerm && size == faultGranule)
        {
            if (i.ExistingLeaf is not { } old)
                return new(FaultResult.Retry, Errno.None, null, prot, DecisionPath.RelaxPerms);
            return new(FaultResult.PermissionsRelaxed, Errno.None, RelaxPerms(old, prot), prot, DecisionPath.RelaxPerms);
        }
        var err = Stage2SetProtAttr.Compute(prot, rules, i.Policy.Cpu.Fwb, out var attr);
        if (err != Errno.None) return new(FaultResult.Error, err, null, prot, DecisionPath.SetProtAttrRejected);
        var level = LevelOf(size);
        var leaf = new Stage2Leaf(ipa, level, prot, Stage2Descriptor.Encode(i.Pfn.Pfn, level, attr));
        // stage2_map_walker_try_leaf: an existing valid leaf that differs only in permissions is left
        // alone (-EAGAIN -> 0); anything else is replaced (break-before-make).
        if (i.ExistingLeaf is { } existing && existing.Gpa == leaf.Gpa && existing.Level == leaf.Level &&
            !Stage2PteNeedsUpdate(existing.Descriptor, leaf.Descriptor))
            return new(FaultResult.AlreadyMapped, Errno.None, existing, prot, DecisionPath.SpuriousSameLeaf);
        return new(FaultResult.Mapped, Errno.None, leaf, prot, DecisionPath.MapLeaf);
    }

    private static FaultOutcome Fail(Errno e, DecisionPath path) => new(FaultResult.Error, e, null, default, path);

    /// <summary>stage2_pte_needs_update: true unless old and new differ only in S2AP/XN.</summary>
    public static bool Stage2PteNeedsUpdate(ulong oldPte, ulong newPte)
    {
        const ulong perms = Stage2Descriptor.S2apR | Stage2Descriptor.S2apW | Stage2Descriptor.XnBit;
        return ((oldPte ^ newPte) & ~perms) != 0;
    }

    /// <summary>kvm_pgtable_stage2_relax_perms: adds R / W / X (clears XN); never changes MemAttr.</summary>
    public static Stage2Leaf RelaxPerms(Stage2Leaf old, KvmPgtableProt prot)
    {
        var d = old.Descriptor;
        if ((prot & KvmPgtableProt.KVM_PGTABLE_PROT_R) != 0) d |= Stage2Descriptor.S2apR;
        if ((prot & KvmPgtableProt.KVM_PGTABLE_PROT_W) != 0) d |= Stage2Descriptor.S2apW;
        if ((prot & KvmPgtableProt.KVM_PGTABLE_PROT_X) != 0) d &= ~Stage2Descriptor.XnBit;
        return old with { Descriptor = d, Prot = old.Prot | (prot & (KvmPgtableProt.KVM_PGTABLE_PROT_R | KvmPgtableProt.KVM_PGTABLE_PROT_W | KvmPgtableProt.KVM_PGTABLE_PROT_X)) };
    }

    /// <summary>Step 4: dirty logging forces pages; else get_vma_page_shift clamped by
    /// fault_supports_stage2_huge_mapping (PUD → PMD → PAGE, force_pte when falling to PAGE).</summary>
    public static (ulong Size, bool ForcePte) MappingSize(VmaSnapshot vma, ulong hva, Memslot slot)
    {
        if (slot.LoggingActive) return (PageSize, true);
        var shift = GetVmaPageShift(vma, hva);
        if (shift == PudShift)
        {
            if (FaultSupportsStage2HugeMapping(slot, hva, PudSize)) return (PudSize, false);
            shift = PmdShift;
        }
        if (shift == PmdShift)
        {
            if (FaultSupportsStage2HugeMapping(slot, hva, PmdSize)) return (PmdSize, false);
            return (PageSize, true);
        }
        return (PageSize, false);
    }

    /// <summary>get_vma_page_shift (upstream v5.14 … v7.2): PFNMAP VMAs use the vm_pgoff heuristic
    /// pa = (vm_pgoff &lt;&lt; PAGE_SHIFT) + (hva - vm_start); hugetlb is not modelled; others PAGE_SHIFT.</summary>
    public static int GetVmaPageShift(VmaSnapshot vma, ulong hva)
    {
        if (!vma.Flags.Has(VmFlags.VM_PFNMAP)) return PageShift;
        var pa = (vma.PgOff << PageShift) + (hva - vma.Start);
        if ((hva & (PudSize - 1)) == (pa & (PudSize - 1)) && AlignDown(hva, PudSize) >= vma.Start && AlignUp(hva, PudSize) <= vma.End)
            return PudShift;
        if ((hva & (PmdSize - 1)) == (pa & (PmdSize - 1)) && AlignDown(hva, PmdSize) >= vma.Start && AlignUp(hva, PmdSize) <= vma.End)
            return PmdShift;
        return PageShift;
    }

    /// <summary>fault_supports_stage2_huge_mapping: gpa and uaddr agree modulo the block size and the
    /// block lies inside the memslot's userspace range.</summary>
    public static bool FaultSupportsStage2HugeMapping(Memslot slot, ulong hva, ulong mapSize)
    {
        var uaddrStart = slot.UserspaceAddr;
        var uaddrEnd = uaddrStart + slot.Size;
        if ((slot.BaseGpa & (mapSize - 1)) != (uaddrStart & (mapSize - 1))) return false;
        var blockStart = hva & ~(mapSize - 1);
        return blockStart >= uaddrStart && blockStart + mapSize <= uaddrEnd;
    }

    /// <summary>The hva whose pfn the fault resolves: the gfn of the block-aligned IPA, translated by
    /// the memslot (user_mem_abort: gfn = ipa >> PAGE_SHIFT after aligning ipa to the block).</summary>
    public static ulong PfnHva(VmaSnapshot? vma, ulong gpa, Memslot slot)
    {
        var hva = slot.GpaToHva(gpa);
        if (vma is not { } v) return AlignDown(hva, PageSize);
        var (size, _) = MappingSize(v, hva, slot);
        return slot.GpaToHva(AlignDown(gpa, size));
    }
}
