// The protobuf example service on the sockmap transport (this host runs as root): kmux's
// client and the Python client, statuses and deadlines from the workers' codec half.
import { describeProtobufOverKernel } from './protobuf-kernel.js';

describeProtobufOverKernel('sockmap');
