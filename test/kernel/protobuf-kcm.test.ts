// The protobuf example service on the KCM transport, on a real kernel (run.sh): kmux's
// client and the Python client, statuses and deadlines from the workers' codec half.
import { describeProtobufOverKernel } from '../interop/protobuf-kernel.js';

describeProtobufOverKernel('kcm', `kernel ${process.env.KMUX_KERNEL_SERIES}`);
