# A minimal STUN Binding server (RFC 8489) for the NAT lab: answers XOR-MAPPED-ADDRESS.
import socket,struct,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((sys.argv[1],int(sys.argv[2])))
while True:
    d,a=s.recvfrom(1500)
    if len(d)<20 or d[4:8]!=b'\x21\x12\xa4\x42' or struct.unpack('!H',d[:2])[0]!=1: continue
    tid=d[8:20]; port=a[1]^0x2112; ip=bytes(x^y for x,y in zip(socket.inet_aton(a[0]),b'\x21\x12\xa4\x42'))
    attr=struct.pack('!HHxBH',0x20,8,1,port)+ip
    s.sendto(struct.pack('!HH',0x0101,len(attr))+d[4:8]+tid+attr,a)
